"""`rag bench scale`: a small run end to end (child processes, table, plot) and its synthetic corpus."""

import numpy as np

from rag.bench.scale import (
    CHUNKS_PER_ARTICLE,
    SENTENCES_PER_CHUNK,
    format_scale,
    run_scale_bench,
    seed_vocabulary,
    synthetic_articles,
)
from rag.settings import Settings


def test_synthetic_articles_look_like_ingested_ones():
    [(article, chunks, vectors, sentences)] = synthetic_articles(1, 0, seed=1, vocabulary=seed_vocabulary())
    assert len(chunks) == CHUNKS_PER_ARTICLE and vectors.shape == (CHUNKS_PER_ARTICLE, 384)
    assert len(sentences) == CHUNKS_PER_ARTICLE * SENTENCES_PER_CHUNK
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    for c in chunks:  # chunk offsets point into the article's text, sentence spans into the chunk's
        assert article.text[c.start:c.end] == c.text
    cid, _, (start, end) = sentences[3]
    sentence = next(c for c in chunks if c.id == cid).text[start:end]
    assert sentence.endswith(".") and " " in sentence


def test_a_small_run_prints_every_cost_and_writes_the_plot(tmp_path):
    out = []

    class Sink:
        def write(self, text):
            out.append(text)

        def flush(self):
            pass

    figures = run_scale_bench(Settings(), [200, 400], ["local"], plot=tmp_path / "scale.png", out=Sink())
    rows = figures["rows"]
    assert [r["size"] for r in rows] == [200, 400] and not any("error" in r for r in rows)
    for r in rows:
        assert r["chunks"] == r["size"] and r["add_100_s"] > 0 and r["cold_start_s"] > 0 and r["disk_mb"] > 0
        assert set(r["query_ms"]) == {"dense", "bm25", "hybrid"}
    assert (tmp_path / "scale.png").stat().st_size > 10_000
    table = "".join(out)
    assert table.count("\n| local |") == 2 and "| 400 |" in table


def test_a_failed_size_is_a_row_that_says_so():
    table = format_scale({"rows": [{"backend": "postgres", "size": 1000, "error": "could not connect"}]})
    assert "| postgres | 1,000 | failed: could not connect |" in table


def test_a_previous_configuration_is_shown_beside_this_run(tmp_path):
    import json

    from rag.bench.scale import format_scale

    previous = tmp_path / "before.json"
    row = {"backend": "local", "size": 1000, "add_100_s": 9.9, "remove_10_s": 1.0, "cold_start_s": 5.0,
           "query_ms": {m: {"p50": 1.0, "p95": 2.0} for m in ("dense", "bm25", "hybrid")}, "recall_at_10": None,
           "rss_mb": 1, "disk_mb": 1.0, "search": "exact (flat)"}
    previous.write_text(json.dumps({"label": "before", "rows": [row]}))
    figures = run_scale_bench(Settings(), [], ["local"], plot=None, out=type("Sink", (), {"write": lambda s, t: None})(),
                              previous=[previous])
    assert [r["backend"] for r in figures["rows"]] == ["local (before)"]
    assert "| local (before) | 1,000 | 9.9 |" in format_scale(figures)


def test_the_postgres_insert_probe_times_both_ways(pg_dsn):
    from rag.bench.scale import postgres_insert_probe

    figures = postgres_insert_probe(Settings(pg_dsn=pg_dsn), base_articles=2, added=3)
    assert figures["with_hnsw_s"] > 0 and figures["without_hnsw_s"] > 0
