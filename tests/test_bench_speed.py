"""`rag bench speed`: its table and its child processes; the measurements themselves need the real models."""

import pytest

from rag.bench.speed import EMBEDDERS, _in_subprocess, format_speed, installed_runtimes, measure_runtime
from rag.errors import BadInput
from rag.settings import Settings

EMBEDDER_ROW = {"embedder": "x", "corpus": "XQuAD (240 Arabic paragraphs)", "chunks": 251, "ingest_s": 20.0,
                "chunks_per_s": 12.55, "load_s": 0.3, "query_embed_ms": {"p50": 7.1, "p95": 9.0},
                "retrieve_ms": {"p50": 15.0, "p95": 20.0}, "queries": 200, "recall_at_1": {"ar": 0.93, "en": 0.804}, "peak_rss_mb": 800,
                "cold_retrieve_s": [1.4, 1.5, 1.6], "cold_retrieve_median_s": 1.5}


def test_the_table_puts_each_configuration_beside_the_previous_one_and_shows_failures():
    figures = {"embedders": {"torch": {**EMBEDDER_ROW, "chunks_per_s": 7.4}, "onnx": EMBEDDER_ROW},
               "runtimes": {"xllamacpp": {"prompt_tokens": 500, "prompt_tok_s": 75.0, "gen_tok_s": 29.0},
                            "llama-cpp-python": {"error": "ImportError: no llama_cpp"}},
               "answers": {"prebuilt": {"n": 10, "prompt_tokens_p50": 400, "cached_tokens_p50": 300,
                                        "first_token_p50_s": 6.0, "first_token_p95_s": 7.0, "total_p50_s": 6.0,
                                        "total_p95_s": 7.0, "right": 0.6, "confidently_wrong": 0.1},
                           "built here": {"n": 10, "prompt_tokens_p50": 400, "cached_tokens_p50": 300,
                                          "first_token_p50_s": 5.0, "first_token_p95_s": 6.0, "total_p50_s": 5.0,
                                          "total_p95_s": 6.0, "right": 0.6, "confidently_wrong": 0.1}}}
    table = format_speed(figures)
    rows = [line for line in table.splitlines() if line.startswith(f"| {EMBEDDERS['torch']}")
            or line.startswith(f"| {EMBEDDERS['onnx']}")]
    assert len(rows) == 2 and "7.4 (251" in rows[0] and "12.55 (251" in rows[1]
    assert "| 0.93 / 0.804 |" in rows[1]
    assert "1.5 (1.4, 1.5, 1.6)" in rows[1]
    assert "| llama-cpp-python | failed: ImportError" in table
    assert "| prebuilt | 400 (300) | 6.0 / 7.0 |" in table
    assert "| built here | 400 (300) | 5.0 / 6.0 |" in table


def test_a_failed_measurement_comes_back_as_an_error_row_not_a_crash():
    row = _in_subprocess(["--part", "runtime:no-such-runtime"])
    assert "no-such-runtime" in row["error"]
    with pytest.raises(BadInput, match="unknown LLM runtime"):
        measure_runtime("no-such-runtime", Settings())


def test_only_installed_runtimes_are_measured():
    assert "xllamacpp" in installed_runtimes()  # a project dependency
    assert set(installed_runtimes()) <= {"xllamacpp", "llama-cpp-python"}


def test_the_prebuilt_runtime_is_measured_beside_a_build_for_this_cpu(monkeypatch, tmp_path):
    from rag import native
    from rag.bench import speed

    monkeypatch.setattr(speed, "PREBUILT_DIR", tmp_path / "prebuilt")
    monkeypatch.setattr(native, "unpack_prebuilt", lambda pinned, target: 0)
    monkeypatch.setattr(native, "system_info", lambda: "CPU : AVX2 = 1 | AVX512 = 1 |")
    configurations = speed.llm_configurations()
    assert list(configurations)[:2] == [speed.PREBUILT, speed.BUILT_HERE]
    assert configurations[speed.PREBUILT]["env"]["PYTHONPATH"].startswith(str(tmp_path / "prebuilt"))
    assert configurations[speed.BUILT_HERE]["env"] == {}
    monkeypatch.setattr(native, "system_info", lambda: "CPU : AVX2 = 1 |")  # the prebuilt one installed
    assert "xllamacpp" in speed.llm_configurations()


def test_recall_counts_a_question_only_when_its_own_paragraph_comes_first():
    from types import SimpleNamespace

    from rag.bench.speed import recall_at_1

    class Retriever:
        def retrieve_many(self, questions, k):
            return [[SimpleNamespace(article_id=q.split()[-1])] if "found" in q else [] for q in questions]

    questions = {"ar": [("found p1", "p1", ""), ("found p2", "p9", ""), ("lost", "p3", "")], "en": []}
    assert recall_at_1(Retriever(), questions) == {"ar": 0.333, "en": 0.0}
