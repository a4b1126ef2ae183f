"""Hybrid retrieval: dense (FAISS) plus BM25 over Arabic-normalised text, fused by weighted reciprocal rank.

BM25 only votes where it can help: when the question is in the language of the passage. An English
question shares no words with Arabic text, and fusing its lexical noise in wrecks recall (see notes).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

import numpy as np

from rag.arabic import detect_language, strip_invisible, tokenize_for_search
from rag.errors import BadInput, QuestionTooLong
from rag.records import Hit

# The hard ceiling; the service applies RAG_MAX_QUESTION_CHARS (default 2000) before any model runs.
MAX_QUESTION_CHARS = 100_000


class BM25:
    """Okapi BM25 over pre-tokenised documents (small enough here to keep postings in dicts)."""

    def __init__(self, docs: list[list[str]], k1: float = 1.2, b: float = 0.75):
        if k1 < 0 or not 0 <= b <= 1:
            raise ValueError(f"BM25 needs k1 >= 0 and 0 <= b <= 1, got k1={k1}, b={b}")
        self.k1, self.b = k1, b
        self.n = len(docs)
        self.lengths = [len(d) for d in docs]
        self.avg_len = (sum(self.lengths) / self.n) if self.n else 0.0
        self.postings: dict[str, list[tuple[int, int]]] = {}
        for i, doc in enumerate(docs):
            for term, tf in Counter(doc).items():
                self.postings.setdefault(term, []).append((i, tf))
        self.idf = {t: math.log(1 + (self.n - len(p) + 0.5) / (len(p) + 0.5)) for t, p in self.postings.items()}

    def scores(self, query: list[str]) -> dict[int, float]:
        out: dict[int, float] = {}
        for term in set(query):
            idf = self.idf.get(term)
            if idf is None:
                continue
            for i, tf in self.postings[term]:
                norm = tf + self.k1 * (1 - self.b + self.b * self.lengths[i] / self.avg_len)
                out[i] = out.get(i, 0.0) + idf * tf * (self.k1 + 1) / norm
        return out


@dataclass(frozen=True)
class Filters:
    source: str | None = None
    since: str | None = None  # ISO dates, inclusive
    until: str | None = None

    def __bool__(self) -> bool:
        return bool(self.source or self.since or self.until)

    def allows(self, article) -> bool:
        if self.source and self.source.casefold() not in (article.source or "").casefold():
            return False
        if (self.since or self.until) and not article.date:
            return False
        if self.since and article.date < self.since:
            return False
        return not (self.until and article.date > self.until)


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
        self._bm25: BM25 | None = None
        self._bm25_version = -1
        self._bm25_ids: list[str] = []
        self._chunk_lang: dict[str, str] = {}

    @classmethod
    def from_settings(cls, store, embedder, settings, **overrides) -> HybridRetriever:
        kwargs = dict(top_k=settings.top_k, candidates=settings.candidates, bm25_weight=settings.bm25_weight,
                      rrf_k=settings.rrf_k, sentence_weight=settings.sentence_weight,
                      fusion=settings.fusion)
        kwargs.update(overrides)
        return cls(store, embedder, **kwargs)

    def _lexical(self) -> BM25:
        if self._bm25 is None or self._bm25_version != self.store.version:
            chunks = self.store.chunks()
            self._bm25_ids = [c.id for c in chunks]
            self._bm25 = BM25([tokenize_for_search(c.text) for c in chunks])
            self._chunk_lang = {c.id: detect_language(c.text) for c in chunks}
            self._bm25_version = self.store.version
        return self._bm25

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
        pool = len(self.store) if filters else max(self.candidates, k)
        dense_lists: list[list[tuple[str, float]]] = [[] for _ in questions]
        if self.mode != "bm25":
            if query_vectors is None:
                query_vectors = self.embedder.embed_queries(questions)
            dense_lists = self.store.search(query_vectors, pool, self.sentence_weight)
        return [self._fuse(q, dense, k, pool, filters) for q, dense in zip(questions, dense_lists, strict=True)]

    def _fuse(self, question: str, dense: list[tuple[str, float]], k: int, pool: int, filters: Filters) -> list[Hit]:
        allowed = (lambda cid: filters.allows(self.store.article(self.store.chunk(cid).article_id))) if filters else None
        dense = [(c, s) for c, s in dense if allowed is None or allowed(c)]
        lexical: list[tuple[str, float]] = []
        q_lang = detect_language(question)
        if self.mode != "dense" and (self.mode == "bm25" or self.bm25_weight > 0):
            bm25 = self._lexical()
            scored = sorted(bm25.scores(tokenize_for_search(question)).items(), key=lambda x: -x[1])
            for i, s in scored:
                cid = self._bm25_ids[i]
                if self.mode == "hybrid" and self._chunk_lang[cid] != q_lang:
                    continue  # lexical match across languages is noise
                if allowed is None or allowed(cid):
                    lexical.append((cid, s))
                if len(lexical) >= pool:
                    break
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
