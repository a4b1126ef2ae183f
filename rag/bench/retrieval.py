"""`rag bench retrieval`: recall of the right XQuAD paragraph for Arabic and English questions, against
baselines, plus ingest throughput, latency, index size and peak memory. Prints figures; asserts nothing."""

from __future__ import annotations

import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from rag.datasets import load_xquad, write_articles_jsonl
from rag.settings import Settings


class _MemoQueries:
    """Embeds each distinct question once across the compared retrievers (same vectors for all)."""

    def __init__(self, inner):
        self.inner, self.name, self._memo = inner, inner.name, {}

    @property
    def dim(self):
        return self.inner.dim

    def embed_queries(self, texts):
        todo = [t for t in dict.fromkeys(texts) if t not in self._memo]
        if todo:
            for t, v in zip(todo, self.inner.embed_queries(todo), strict=True):
                self._memo[t] = v
        return np.stack([self._memo[t] for t in texts])

    def embed_passages(self, texts, progress=False):
        return self.inner.embed_passages(texts, progress)

    def count_tokens(self, text):
        return self.inner.count_tokens(text)


def recall_table(ranked: list[list[str]], gold: list[str]) -> dict:
    r1 = r5 = mrr = 0.0
    for ids, g in zip(ranked, gold, strict=True):
        if g in ids:
            rank = ids.index(g) + 1
            mrr += 1 / rank
            r1 += rank == 1
            r5 += rank <= 5
    n = max(len(gold), 1)
    return {"R@1": round(r1 / n, 3), "R@5": round(r5 / n, 3), "MRR": round(mrr / n, 3), "n": len(gold)}


def _llama_index_ranked(articles, embedder, questions, k):
    """Baseline: plain llama-index VectorStoreIndex, default splitter, same embedder."""
    from llama_index.core import Document, VectorStoreIndex

    from rag.embed import as_llama_index_embedding

    docs = [Document(text=a["text"], id_=a["id"], metadata={"article_id": a["id"]}) for a in articles]
    index = VectorStoreIndex.from_documents(docs, embed_model=as_llama_index_embedding(embedder))
    retriever = index.as_retriever(similarity_top_k=k)
    out = []
    for q in questions:
        seen = []
        for node in retriever.retrieve(q):
            aid = node.node.metadata["article_id"]
            if aid not in seen:
                seen.append(aid)
        out.append(seen)
    return out


def run_retrieval_bench(settings: Settings, data_dir: Path, as_json: bool = False, limit: int | None = None,
                        embedder=None, out=sys.stdout) -> dict:
    from rag.embed import make_embedder
    from rag.ingest import Ingestor
    from rag.retrieve import HybridRetriever
    from rag.store import scratch_store

    articles, questions = load_xquad(data_dir, limit)
    base_embedder = embedder or make_embedder(settings)
    emb = _MemoQueries(base_embedder)
    k = 10
    with tempfile.TemporaryDirectory(prefix="rag-bench-") as tmp, scratch_store(settings, emb.name, Path(tmp)) as store:
        src = write_articles_jsonl(articles, Path(tmp) / "xquad-ar.jsonl")
        report = Ingestor.from_settings(store, emb, settings,
                                        progress=not as_json and out is sys.stdout and sys.stderr.isatty()).ingest([src])
        ingest_rate = report.chunks_embedded / max(report.seconds, 1e-9)
        index_bytes = store.size_bytes()

        systems = {
            "hybrid (ours)": HybridRetriever.from_settings(store, emb, settings, top_k=k, candidates=max(50, k)),
            "dense (chunk vectors only)": HybridRetriever(store, emb, top_k=k, mode="dense", sentence_weight=0.0),
            "BM25 (normalised Arabic)": HybridRetriever(store, emb, top_k=k, mode="bm25"),
        }
        results: dict = {}
        for lang in ("ar", "en"):
            qs = [q for q, _, _ in questions[lang]]
            gold = [g for _, g, _ in questions[lang]]
            emb.embed_queries(qs)  # embed once, shared by every system
            for name, retriever in systems.items():
                hits = retriever.retrieve_many(qs, k=k)
                results.setdefault(name, {})[lang] = recall_table([[h.article_id for h in hs] for hs in hits], gold)
            results.setdefault("llama-index VectorStoreIndex (default splitter)", {})[lang] = recall_table(
                _llama_index_ranked(articles, emb, qs, k), gold)

        # Latency: one question at a time, embedding included (no memo), as a user would see it.
        live = HybridRetriever.from_settings(store, base_embedder, settings)
        sample = [q for q, _, _ in questions["ar"][:100]] + [q for q, _, _ in questions["en"][:100]]
        timings = []
        for q in sample:
            t = time.perf_counter()
            live.retrieve(q)
            timings.append((time.perf_counter() - t) * 1000)
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures = {
        "paragraphs": len(articles), "chunks": report.chunks_embedded, "questions": {k_: len(v) for k_, v in questions.items()},
        "recall": results,
        "ingest": {"chunks_per_s": round(ingest_rate, 2), "seconds": report.seconds,
                   "sentence_vectors": settings.sentence_vectors},
        "latency_ms": {"p50": round(statistics.median(timings), 1),
                       "p95": round(float(np.percentile(timings, 95)), 1), "n": len(timings)},
        "index_mb": round(index_bytes / 1e6, 2), "peak_rss_mb": round(peak_rss_mb, 1),
        "embedder": emb.name,
    }
    if as_json:
        out.write(json.dumps(figures, ensure_ascii=False) + "\n")
    else:
        out.write(format_table(figures))
    return figures


def format_table(f: dict) -> str:
    lines = [f"XQuAD retrieval: {f['paragraphs']} Arabic paragraphs ({f['chunks']} chunks), "
             f"{f['questions']['ar']} Arabic + {f['questions']['en']} English questions; embedder {f['embedder']}",
             "",
             f"| {'retriever':<48} | ar R@1 | ar R@5 | ar MRR | en R@1 | en R@5 | en MRR |",
             f"|{'-' * 50}|--------|--------|--------|--------|--------|--------|"]
    for name, by_lang in f["recall"].items():
        a, e = by_lang["ar"], by_lang["en"]
        lines.append(f"| {name:<48} | {a['R@1']:.3f}  | {a['R@5']:.3f}  | {a['MRR']:.3f}  "
                     f"| {e['R@1']:.3f}  | {e['R@5']:.3f}  | {e['MRR']:.3f}  |")
    lines += ["",
              f"ingest: {f['ingest']['chunks_per_s']} chunks/s ({f['ingest']['seconds']} s, "
              f"sentence vectors {'on' if f['ingest']['sentence_vectors'] else 'off'})",
              f"retrieval latency (one question, embedding included): p50 {f['latency_ms']['p50']} ms, "
              f"p95 {f['latency_ms']['p95']} ms over {f['latency_ms']['n']} questions",
              f"index size: {f['index_mb']} MB; peak RSS: {f['peak_rss_mb']} MB", ""]
    return "\n".join(lines)
