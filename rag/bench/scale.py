"""`rag bench scale`: how the index's costs grow with the archive, per backend, on synthetic corpora.

Synthetic, so no model time is measured: random vectors stand in for the embedder, with the structure real ones
have (an article's passages near its topic, a passage's sentences near the passage, a question near the passage
that answers it; uniform random vectors have no near neighbours at all, and no approximate search finds their
top 10), and the text is Arabic words drawn from the seeds' vocabulary by their frequency, so the lexical index
has real work (real tokens, a Zipf-like spread of postings). Articles have 10 chunks of about 180 words (the seeds' mean) and each chunk has
SENTENCES_PER_CHUNK sentence vectors (the seeds' ratio). Per size, in a fresh process each (so one size's memory
does not colour the next): cold start (open the index and answer the first hybrid query), query p50/p95 for
dense, lexical and fused retrieval, recall@10 of the approximate dense search against exact search, RSS, disk
size, then the time to add 100 articles and to remove 10, each with its commit. Prints a table and writes a
log-log plot; asserts nothing."""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from rag.errors import BadInput
from rag.records import Article, Chunk
from rag.settings import Settings

DIM = 384
CHUNKS_PER_ARTICLE = 10
WORDS_PER_CHUNK = 180
SENTENCES_PER_CHUNK = 7  # the seed index: 103 sentence vectors for 14 chunks
QUERIES = 50
ADDED_ARTICLES = 100
REMOVED_ARTICLES = 10
EMBEDDER_NAME = "synthetic:random-unit"


class RandomEmbedder:
    """Unit vectors from a seeded generator: the cost of search without the cost of a model."""

    name = EMBEDDER_NAME
    dim = DIM

    def __init__(self, seed: int = 7):
        self._rng = np.random.default_rng(seed)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return unit_rows(self._rng, len(texts))

    def embed_passages(self, texts: list[str], progress: bool = False) -> np.ndarray:
        return unit_rows(self._rng, len(texts))


def unit_rows(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def near(rng: np.random.Generator, centres: np.ndarray, spread: float) -> np.ndarray:
    """Unit vectors scattered around `centres` (rows): cosine about 1/sqrt(1 + spread^2) to their centre."""
    v = centres + spread * unit_rows(rng, len(centres))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def seed_vocabulary(seeds: Path = Path("seeds")) -> tuple[np.ndarray, np.ndarray]:
    """The seeds' words and their frequencies (sampling weights)."""
    counts: Counter[str] = Counter()
    for path in sorted(seeds.glob("*.txt")):
        counts.update(w for w in path.read_text(encoding="utf-8").split() if any(c.isalpha() for c in w))
    if not counts:
        raise BadInput(f"no words in {seeds}/*.txt to draw synthetic articles from")
    words, freq = zip(*counts.most_common(), strict=True)
    p = np.asarray(freq, dtype=np.float64)
    return np.asarray(words, dtype=object), p / p.sum()


def synthetic_articles(n_articles: int, first: int, seed: int, vocabulary) -> list[tuple]:
    """(article, chunks, chunk vectors, sentences) rows, as an ingest hands them to the store."""
    words, p = vocabulary
    rng = np.random.default_rng(seed)
    per_sentence = WORDS_PER_CHUNK // SENTENCES_PER_CHUNK
    rows = []
    for a in range(first, first + n_articles):
        article_id = f"syn-{a:07d}"
        drawn = rng.choice(words, size=(CHUNKS_PER_ARTICLE, SENTENCES_PER_CHUNK, per_sentence), p=p)
        chunks, sentence_rows, offset, pieces = [], [], 0, []
        for n in range(CHUNKS_PER_ARTICLE):
            spans, text = [], ""
            for s in range(SENTENCES_PER_CHUNK):
                sentence = " ".join(drawn[n, s]) + "."
                start = len(text) + (1 if text else 0)
                text = f"{text} {sentence}" if text else sentence
                spans.append((start, len(text)))
            chunk = Chunk(id=f"{article_id}#{n}", article_id=article_id, n=n, text=text, start=offset,
                          end=offset + len(text))
            chunks.append(chunk)
            pieces.append(text)
            offset += len(text) + 2
            sentence_rows += [(chunk.id, span) for span in spans]
        day = 1 + a % 28
        article = Article(id=article_id, text="\n\n".join(pieces), title=f"مقال {a}", date=f"2021-{1 + a % 12:02d}-{day:02d}",
                          source=("الجزيرة", "العربية", "رويترز")[a % 3])
        chunk_vectors = near(rng, np.repeat(unit_rows(rng, 1), len(chunks), axis=0), 1.0)
        sent_vectors = near(rng, np.repeat(chunk_vectors, SENTENCES_PER_CHUNK, axis=0), 0.7)
        sentences = [(cid, v, span) for (cid, span), v in zip(sentence_rows, sent_vectors, strict=True)]
        rows.append((article, chunks, chunk_vectors, sentences))
    return rows


# ---- one size, in this process ----------------------------------------------------------------------------------
def build(settings: Settings, chunks: int) -> dict:
    """Write a base index of `chunks` chunks at settings.index_dir in batches, as a long-running archive gets."""
    from rag.store import open_store

    vocabulary = seed_vocabulary()
    n_articles = max(1, chunks // CHUNKS_PER_ARTICLE)
    store = open_store(settings, EMBEDDER_NAME, create=True)
    started = time.perf_counter()
    batch = 1000
    for first in range(0, n_articles, batch):
        for row in synthetic_articles(min(batch, n_articles - first), first, seed=first, vocabulary=vocabulary):
            store.put_article(*row)
        store.save()
    if hasattr(store, "compact"):
        store.compact()  # the base archive as a long-running merge policy leaves it
    return {"build_s": round(time.perf_counter() - started, 1)}


def _rss_mb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    return 0


def _percentiles(values_ms: list[float]) -> dict:
    return {"p50": round(statistics.median(values_ms), 2), "p95": round(float(np.percentile(values_ms, 95)), 2)}


def measure(settings: Settings, chunks: int) -> dict:
    """Cold start, queries, recall, memory and disk over the index `build` wrote, then an add and a removal."""
    from rag.retrieve import HybridRetriever
    from rag.store import open_store

    vocabulary = seed_vocabulary()
    rng = np.random.default_rng(11)
    words, p = vocabulary
    n_base = max(1, chunks // CHUNKS_PER_ARTICLE)
    questions = [" ".join(rng.choice(words, size=int(rng.integers(3, 7)), p=p)) for _ in range(QUERIES)]
    embedder = RandomEmbedder()
    started = time.perf_counter()
    store = open_store(settings, EMBEDDER_NAME)
    retriever = HybridRetriever.from_settings(store, embedder, settings)
    retriever.retrieve(questions[0])
    cold_s = time.perf_counter() - started
    # Each question near a passage of the archive, as a question is near the passage that answers it.
    answering = [f"syn-{int(a):07d}#{int(n)}" for a, n in zip(rng.integers(0, n_base, QUERIES),
                                                              rng.integers(0, CHUNKS_PER_ARTICLE, QUERIES), strict=True)]
    query_vectors = near(rng, np.stack([store.chunk_vector(c) for c in answering]), 0.8)
    timings = {}
    for mode in ("dense", "bm25", "hybrid"):
        r = HybridRetriever.from_settings(store, embedder, settings, mode=mode)
        r.retrieve(questions[0], query_vector=query_vectors[0])
        ms = []
        for q, v in zip(questions, query_vectors, strict=True):
            t = time.perf_counter()
            r.retrieve(q, query_vector=v)
            ms.append((time.perf_counter() - t) * 1000)
        timings[mode] = _percentiles(ms)
    recall = dense_recall_at_10(store, query_vectors, settings.sentence_weight)
    rss = _rss_mb()
    added = synthetic_articles(ADDED_ARTICLES, n_base, seed=n_base + 1, vocabulary=vocabulary)
    t = time.perf_counter()
    for row in added:
        store.put_article(*row)
    store.save()
    add_s = time.perf_counter() - t
    disk = round(store.size_bytes() / 2**20, 1)  # after a commit, so what a merge left behind is swept
    t = time.perf_counter()
    for a in range(REMOVED_ARTICLES):
        store.remove_article(f"syn-{a * max(1, n_base // REMOVED_ARTICLES):07d}")
    store.save()
    remove_s = time.perf_counter() - t
    return {"chunks": len(store) - ADDED_ARTICLES * CHUNKS_PER_ARTICLE + REMOVED_ARTICLES * CHUNKS_PER_ARTICLE,
            "cold_start_s": round(cold_s, 2), "query_ms": timings, "recall_at_10": recall,
            "rss_mb": rss, "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "disk_mb": disk, "add_100_s": round(add_s, 3), "remove_10_s": round(remove_s, 3),
            "search": store.describe() if hasattr(store, "describe") else "exact (flat)"}


def dense_recall_at_10(store, queries: np.ndarray, sentence_weight: float) -> float:
    """Share of exact search's top 10 passages (passage and sentence cosines blended, as retrieval ranks them) that
    the store's own search, approximate where it has an ANN index, returns."""
    approx = store.search(queries, 10, sentence_weight)
    exact = store.search_exact(queries, 10, sentence_weight)
    found = [len({c for c, _ in a} & {c for c, _ in e}) / max(1, len(e)) for a, e in zip(approx, exact, strict=True)]
    return round(float(np.mean(found)), 3)


def postgres_insert_probe(settings: Settings, base_articles: int = 100, added: int = ADDED_ARTICLES) -> dict:
    """Where PostgreSQL's add time goes: 100 articles added to an index of `base_articles`, once with its two HNSW
    indexes and once with them dropped (a throwaway server unless RAG_PG_DSN is set)."""
    from rag.store import scratch_store
    from rag.store.postgres import PostgresStore

    vocabulary = seed_vocabulary()
    out = {}
    for label, drop in (("with_hnsw_s", False), ("without_hnsw_s", True)):
        with tempfile.TemporaryDirectory() as tmp, \
                scratch_store(settings.model_copy(update={"store": "postgres"}), EMBEDDER_NAME, Path(tmp)) as store:
            assert isinstance(store, PostgresStore)
            for row in synthetic_articles(base_articles, 0, 1, vocabulary):
                store.put_article(*row)
            store.save()
            if drop:
                store.drop_vector_indexes()
            started = time.perf_counter()
            for row in synthetic_articles(added, base_articles, 2, vocabulary):
                store.put_article(*row)
            store.save()
            out[label] = round(time.perf_counter() - started, 2)
    return out


# ---- the command ------------------------------------------------------------------------------------------------
def _child(part: str, env: dict) -> dict:
    proc = subprocess.run([sys.executable, "-m", "rag", "bench", "scale", "--json", "--part", part],
                          env={**os.environ, **env}, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"error": tail[0][:300]}
    return json.loads(lines[-1])


def run_scale_bench(settings: Settings, sizes: list[int], backends: list[str], part: str = "all",
                    plot: Path | None = Path("docs/bench-scale.png"), as_json: bool = False, out=sys.stdout,
                    previous: list[Path] = ()) -> dict:
    """`previous`: JSON of earlier runs (`--json`) to print and plot beside this one, e.g. a configuration the code
    no longer has (the whole-generation index before segments: docs/bench-scale-generations.json)."""
    if part == "probe:postgres":
        figures = postgres_insert_probe(settings)
        out.write(json.dumps(figures) + "\n" if as_json else
                  f"PostgreSQL, adding {ADDED_ARTICLES} articles to {100 * CHUNKS_PER_ARTICLE:,} chunks: "
                  f"{figures['with_hnsw_s']} s with the HNSW indexes, {figures['without_hnsw_s']} s without\n")
        return figures
    if part != "all":  # a child process: one measurement of one size, on the index at RAG_INDEX_DIR
        what, size = part.split(":")
        figures = build(settings, int(size)) if what == "build" else measure(settings, int(size))
        out.write(json.dumps(figures, ensure_ascii=False) + "\n")
        return figures
    progress = sys.stderr if as_json else out
    rows = []
    with ExitStack() as stack:
        dsn = settings.pg_dsn
        if "postgres" in backends and not dsn:
            from rag.store.pgserver import temporary_postgres

            dsn = stack.enter_context(temporary_postgres())
        for backend in backends:
            for size in sizes:
                with tempfile.TemporaryDirectory(prefix="rag-bench-scale-") as tmp:
                    schema = f"scale_{os.getpid()}_{size}"
                    env = {"RAG_INDEX_DIR": str(Path(tmp) / "index"), "RAG_STORE": backend, "RAG_PG_DSN": dsn,
                           "RAG_PG_SCHEMA": schema}
                    progress.write(f"  {backend}, {size:,} chunks: building ...\n")
                    progress.flush()
                    built = _child(f"build:{size}", env)
                    if "error" not in built:
                        progress.write(f"  {backend}, {size:,} chunks: measuring ...\n")
                        progress.flush()
                        built.update(_child(f"measure:{size}", env))
                    rows.append({"backend": backend, "size": size, **built})
                    if backend == "postgres":
                        from rag.store.postgres import PostgresStore

                        PostgresStore(dsn, EMBEDDER_NAME, schema=schema).drop()
    earlier = []
    for path in previous:
        data = json.loads(Path(path).read_text())
        earlier += [{**r, "backend": f"{r['backend']} ({data.get('label', Path(path).stem)})"} for r in data["rows"]]
    rows = earlier + rows
    figures = {"rows": rows}
    if plot and any("error" not in r for r in rows):
        write_plot(rows, plot)
        figures["plot"] = str(plot)
    out.write(json.dumps(figures, ensure_ascii=False) + "\n" if as_json else format_scale(figures))
    return figures


def format_scale(f: dict) -> str:
    lines = ["| backend | chunks | add 100 articles s | remove 10 s | cold start s | dense p50/p95 ms "
             "| lexical p50/p95 ms | fused p50/p95 ms | dense recall@10 | RSS MB | disk MB | search |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in f["rows"]:
        if "error" in r:
            lines.append(f"| {r['backend']} | {r['size']:,} | failed: {r['error']} |||||||||")
            continue
        q = r["query_ms"]
        lines.append(f"| {r['backend']} | {r['size']:,} | {r['add_100_s']} | {r['remove_10_s']} | {r['cold_start_s']} "
                     f"| {q['dense']['p50']} / {q['dense']['p95']} | {q['bm25']['p50']} / {q['bm25']['p95']} "
                     f"| {q['hybrid']['p50']} / {q['hybrid']['p95']} | {r['recall_at_10'] or 'exact'} "
                     f"| {r['rss_mb']} | {r['disk_mb']} | {r['search']} |")
    if f.get("plot"):
        lines += ["", f"plot: {f['plot']}"]
    return "\n".join(lines) + "\n"


def write_plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    costs = [("add_100_s", "add 100 articles (s)"), ("cold_start_s", "cold start (s)"),
             (("query_ms", "hybrid", "p50"), "fused query p50 (ms)"), ("rss_mb", "RSS (MB)"), ("disk_mb", "disk (MB)")]
    fig, axes = plt.subplots(1, len(costs), figsize=(4 * len(costs), 3.6))
    for ax, (key, label) in zip(axes, costs, strict=True):
        for backend in sorted({r["backend"] for r in rows}):
            pts = [(r["size"], _get(r, key)) for r in rows if r["backend"] == backend and "error" not in r]
            if pts:
                ax.loglog(*zip(*pts, strict=True), marker="o", label=backend)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("chunks")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _get(row: dict, key):
    if isinstance(key, tuple):
        for k in key:
            row = row[k]
        return row
    return row[key]
