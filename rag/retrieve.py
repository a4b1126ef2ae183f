"""Hybrid retrieval: dense (FAISS) plus BM25 over Arabic-normalised text, fused by weighted reciprocal rank.

BM25 only votes where it can help: when the question is in the language of the passage. An English
question shares no words with Arabic text, and fusing its lexical noise in wrecks recall (see notes).
"""

from __future__ import annotations

import re

import numpy as np

from rag.arabic import detect_language, strip_invisible, tokenize_for_search
from rag.errors import BadInput, QuestionTooLong
from rag.records import Hit
from rag.store import Filters

# The hard ceiling; the service applies RAG_MAX_QUESTION_CHARS (default 2000) before any model runs.
MAX_QUESTION_CHARS = 100_000


class HybridRetriever:
    """`mode`: "hybrid" (default), "dense" or "bm25"; the last two exist for benchmarks and debugging."""

    def __init__(self, store, embedder, top_k: int = 5, candidates: int = 50, bm25_weight: float = 0.5,
                 rrf_k: int = 60, sentence_weight: float = 0.5, mode: str = "hybrid", fusion: str = "zscore"):
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        if candidates < top_k:
            raise ValueError(f"candidates ({candidates}) must be >= top_k ({top_k})")
        if mode not in ("hybrid", "dense", "bm25"):
            raise ValueError(f"mode must be hybrid, dense or bm25, got {mode!r}")
        if not 0 <= sentence_weight <= 1:
            raise ValueError(f"sentence_weight must be between 0 and 1, got {sentence_weight}")
        if fusion not in ("zscore", "rrf"):
            raise ValueError(f"fusion must be zscore or rrf, got {fusion!r}")
        if bm25_weight < 0:
            raise ValueError(f"bm25_weight must be >= 0, got {bm25_weight}")
        self.store = store
        self.embedder = embedder
        self.top_k = top_k
        self.candidates = candidates
        self.bm25_weight = bm25_weight
        self.rrf_k = rrf_k
        self.sentence_weight = sentence_weight
        self.mode = mode
        self.fusion = fusion

    @classmethod
    def from_settings(cls, store, embedder, settings, **overrides) -> HybridRetriever:
        kwargs = dict(top_k=settings.top_k, candidates=settings.candidates, bm25_weight=settings.bm25_weight,
                      rrf_k=settings.rrf_k, sentence_weight=settings.sentence_weight,
                      fusion=settings.fusion)
        kwargs.update(overrides)
        return cls(store, embedder, **kwargs)

    def retrieve(self, question: str, k: int | None = None, filters: Filters | None = None,
                 query_vector: np.ndarray | None = None) -> list[Hit]:
        vectors = None if query_vector is None else np.asarray(query_vector)[None, :]
        return self.retrieve_many([question], k, filters, vectors)[0]

    def retrieve_many(self, questions: list[str], k: int | None = None, filters: Filters | None = None,
                      query_vectors: np.ndarray | None = None) -> list[list[Hit]]:
        """`query_vectors`: the questions' embeddings when the caller already has them."""
        k = k or self.top_k
        for q in questions:
            check_question(q)
        filters = filters or Filters()
        pool = max(self.candidates, k)
        dense_lists: list[list[tuple[str, float]]] = [[] for _ in questions]
        if self.mode != "bm25":
            if query_vectors is None:
                query_vectors = self.embedder.embed_queries(questions)
            dense_lists = self.store.search(query_vectors, pool, self.sentence_weight, filters=filters)
        return [self._fuse(q, dense, k, pool, filters) for q, dense in zip(questions, dense_lists, strict=True)]

    def _fuse(self, question: str, dense: list[tuple[str, float]], k: int, pool: int, filters: Filters) -> list[Hit]:
        lexical: list[tuple[str, float]] = []
        if self.mode != "dense" and (self.mode == "bm25" or self.bm25_weight > 0):
            # In hybrid mode only passages in the question's language: lexical match across languages is noise.
            lang = detect_language(question) if self.mode == "hybrid" else None
            lexical = self.store.lexical_search(tokenize_for_search(question), pool, lang=lang, filters=filters)
        fused: dict[str, float] = {}
        parts: dict[str, dict[str, float]] = {}
        weights = {"dense": 1.0 if self.mode != "bm25" else 0.0,
                   "bm25": self.bm25_weight if self.mode == "hybrid" else (1.0 if self.mode == "bm25" else 0.0)}
        lists = [(name, ranked) for name, ranked in (("dense", dense), ("bm25", lexical)) if weights[name] and ranked]
        for name, ranked in lists:
            for cid, score in ranked:
                parts.setdefault(cid, {})[name] = round(score, 4)
        if self.fusion == "rrf":
            for name, ranked in lists:
                for rank, (cid, _) in enumerate(ranked):
                    fused[cid] = fused.get(cid, 0.0) + weights[name] / (self.rrf_k + rank + 1)
        else:
            # z-scores keep how far ahead a candidate is, which ranks alone lose; a candidate missing from
            # one list gets that list's lowest score.
            for name, ranked in lists:
                values = np.array([sc for _, sc in ranked], dtype=np.float64)
                mean, std = values.mean(), values.std() or 1.0
                z = {cid: (sc - mean) / std for cid, sc in ranked}
                floor = min(z.values())
                for cid in parts:
                    fused[cid] = fused.get(cid, 0.0) + weights[name] * z.get(cid, floor)
        best = sorted(fused.items(), key=lambda x: -x[1])[:k]
        hits = []
        for rank, (cid, score) in enumerate(best, start=1):
            chunk = self.store.chunk(cid)
            article = self.store.article(chunk.article_id)
            hits.append(Hit(rank=rank, chunk_id=cid, article_id=article.id, title=article.title or article.id,
                            text=chunk.text, score=round(score, 6), source=article.source, date=article.date,
                            start=chunk.start, end=chunk.end, scores=parts.get(cid, {})))
        return hits


def check_question(question: str, max_chars: int = MAX_QUESTION_CHARS) -> str:
    """The question as the chain will use it (invisible and direction-overriding characters removed), or a
    clear error: before any model runs."""
    if not isinstance(question, str) or not question.strip():
        raise BadInput("the question is empty: ask something, e.g. rag retrieve \"كم عدد القتلى؟\"")
    if len(question) > max_chars:
        raise QuestionTooLong(len(question), max_chars)
    question = " ".join(strip_invisible(question).split())
    if not _WORD.search(question):
        raise BadInput("the question has no words (only punctuation, symbols or emoji): ask it in Arabic or English")
    return question


_WORD = re.compile(r"[^\W_]")  # a letter or a digit, in any script


def as_llama_index_retriever(retriever: HybridRetriever, k: int | None = None):
    """Our retriever as a llama-index BaseRetriever, so llama-index query engines (e.g. CitationQueryEngine)
    can run on exactly the same passages."""
    from llama_index.core.retrievers import BaseRetriever
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    class _Adapter(BaseRetriever):
        def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
            hits = retriever.retrieve(query_bundle.query_str, k=k)
            return [NodeWithScore(node=TextNode(id_=h.chunk_id, text=h.text, metadata={
                "article_id": h.article_id, "title": h.title, "source": h.source, "date": h.date}), score=h.score)
                for h in hits]

    return _Adapter()
