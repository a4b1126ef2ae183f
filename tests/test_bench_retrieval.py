import io
import json

import pytest

from rag.bench.retrieval import format_table, recall_table, run_retrieval_bench
from rag.datasets import load_xquad
from rag.errors import BadInput
from rag.settings import Settings


def _tiny_xquad(root):
    folder = root / "xquad"
    folder.mkdir(parents=True)
    paras_ar = [("قصف أمريكي على الحدود قتل خمسة", "كم قتل القصف الأمريكي؟"),
                ("أسعار النفط ارتفعت في لندن", "ماذا حدث لأسعار النفط؟")]
    paras_en = [("US strike", "How many did the US strike kill?"), ("Oil", "What happened to oil prices?")]

    def doc(paras):
        return {"data": [{"title": "T", "paragraphs": [
            {"context": c, "qas": [{"id": str(i), "question": q, "answers": [{"text": "x", "answer_start": 0}]}]}
            for i, (c, q) in enumerate(paras)]}]}
    (folder / "xquad.ar.json").write_text(json.dumps(doc(paras_ar), ensure_ascii=False))
    (folder / "xquad.en.json").write_text(json.dumps(doc(paras_en)))
    return root


def test_recall_table():
    assert recall_table([["a", "b"], ["c", "b"], ["x"]], ["a", "b", "z"]) == {"R@1": 0.333, "R@5": 0.667,
                                                                             "MRR": 0.5, "n": 3}


def test_bench_prints_every_system_and_figure(tmp_path, embedder):
    out = io.StringIO()
    figures = run_retrieval_bench(Settings(), _tiny_xquad(tmp_path), embedder=embedder, out=out)
    text = out.getvalue()
    for row in ("hybrid (ours)", "dense (chunk vectors only)", "BM25", "llama-index VectorStoreIndex"):
        assert row in text
    for figure in ("chunks/s", "p50", "p95", "index size", "peak RSS"):
        assert figure in text
    assert figures["recall"]["hybrid (ours)"]["ar"]["R@1"] == 1.0
    assert figures["questions"] == {"ar": 2, "en": 2}
    assert format_table(figures) == text


def test_missing_data_says_where_to_point(tmp_path):
    with pytest.raises(BadInput, match="RAG_DATA_DIR"):
        load_xquad(tmp_path)
