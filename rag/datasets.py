"""Public datasets read in place (RAG_DATA_DIR): never copied into the project."""

from __future__ import annotations

import json
from pathlib import Path

from rag.errors import BadInput


def load_xquad(data_dir: Path, limit: int | None = None):
    """Arabic paragraphs as articles (one each) and the parallel Arabic and English questions."""
    folder = Path(data_dir) / "xquad"
    ar_path, en_path = folder / "xquad.ar.json", folder / "xquad.en.json"
    if not ar_path.is_file() or not en_path.is_file():
        raise BadInput(f"XQuAD not found under {folder}/ (xquad.ar.json, xquad.en.json): "
                       "set RAG_DATA_DIR or pass --data")
    ar, en = json.loads(ar_path.read_text()), json.loads(en_path.read_text())
    articles, questions = [], {"ar": [], "en": []}
    for a_ar, a_en in zip(ar["data"], en["data"], strict=True):
        for n, (p_ar, p_en) in enumerate(zip(a_ar["paragraphs"], a_en["paragraphs"], strict=True)):
            if limit is not None and len(articles) >= limit:
                return articles, questions
            article_id = f"{a_ar['title']}-{n}"
            articles.append({"id": article_id, "text": p_ar["context"]})
            questions["ar"] += [(q["question"], article_id, q["answers"][0]["text"]) for q in p_ar["qas"]]
            questions["en"] += [(q["question"], article_id, q["answers"][0]["text"]) for q in p_en["qas"]]
    return articles, questions


def write_articles_jsonl(articles: list[dict], path: Path) -> Path:
    """Articles ({"id", "text", ...}) as a JSONL file `rag ingest` reads: how a dataset becomes an index."""
    path.write_text("".join(json.dumps(a, ensure_ascii=False) + "\n" for a in articles), encoding="utf-8")
    return path
