"""BM25 that lives with the segments: each segment keeps its term frequencies as a sparse matrix on disk, and a
query scores with collection statistics summed over the live documents of every segment (Lucene's design), so a
passage's score does not depend on which segment it landed in, and opening the index rebuilds nothing.

Why not bm25s: it bakes each index's idf and average length into its stored score matrix, so per-segment bm25s
indices rank by their own statistics, and one archive-wide bm25s index has to be rebuilt whole on every ingest,
the cost segments exist to remove. Scores equal Okapi BM25 over the live passages (k1=1.2, b=0.75), as before.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
from scipy import sparse

K1 = 1.2
B = 0.75


class SegmentLexicon:
    """One segment's postings: a documents x terms CSC matrix of term counts, the segment's vocabulary and each
    document's length in tokens."""

    def __init__(self, tf: sparse.csc_matrix, vocab: list[str], lengths: np.ndarray):
        self.tf = tf
        self.vocab = vocab
        self.column = {term: i for i, term in enumerate(vocab)}
        self.lengths = lengths

    @classmethod
    def build(cls, docs: list[list[str]]) -> SegmentLexicon:
        column: dict[str, int] = {}
        rows, cols, counts = [], [], []
        for row, doc in enumerate(docs):
            for term, n in Counter(doc).items():
                rows.append(row)
                cols.append(column.setdefault(term, len(column)))
                counts.append(n)
        tf = sparse.csc_matrix((np.asarray(counts, dtype=np.int32), (np.asarray(rows, dtype=np.int32),
                                np.asarray(cols, dtype=np.int32))), shape=(len(docs), len(column)))
        return cls(tf, list(column), np.asarray([len(d) for d in docs], dtype=np.int32))

    @classmethod
    def merge(cls, parts: list[tuple[SegmentLexicon, np.ndarray]]) -> SegmentLexicon:
        """The live rows (a boolean mask per part) of several lexicons, in order, as one."""
        column: dict[str, int] = {}
        blocks, lengths = [], []
        for lex, live in parts:
            remap = np.asarray([column.setdefault(t, len(column)) for t in lex.vocab], dtype=np.int64)
            coo = lex.tf[np.flatnonzero(live)].tocoo()
            blocks.append((coo.data, coo.row, remap[coo.col] if coo.nnz else coo.col, int(live.sum())))
            lengths.append(lex.lengths[live])
        offset, data, rows, cols = 0, [], [], []
        for d, r, c, n in blocks:
            data.append(d)
            rows.append(r + offset)
            cols.append(c)
            offset += n
        tf = sparse.csc_matrix((np.concatenate(data) if data else np.zeros(0, np.int32),
                                (np.concatenate(rows) if rows else np.zeros(0, np.int32),
                                 np.concatenate(cols) if cols else np.zeros(0, np.int32))), shape=(offset, len(column)))
        return cls(tf, list(column), np.concatenate(lengths) if lengths else np.zeros(0, np.int32))

    def save(self, folder: Path) -> list[str]:
        sparse.save_npz(folder / "lexical.npz", self.tf, compressed=False)
        np.save(folder / "lengths.npy", self.lengths)
        (folder / "vocab.json").write_text(json.dumps(self.vocab, ensure_ascii=False), encoding="utf-8")
        return ["lexical.npz", "lengths.npy", "vocab.json"]

    @classmethod
    def load(cls, folder: Path) -> SegmentLexicon:
        tf = sparse.load_npz(folder / "lexical.npz").tocsc()
        vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
        return cls(tf, vocab, np.load(folder / "lengths.npy"))

    def postings(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        """(document rows, term counts) of one term in this segment."""
        col = self.column.get(term)
        if col is None:
            return _EMPTY_INT, _EMPTY_INT
        lo, hi = self.tf.indptr[col], self.tf.indptr[col + 1]
        return self.tf.indices[lo:hi], self.tf.data[lo:hi]


_EMPTY_INT = np.zeros(0, dtype=np.int32)


def bm25_scores(parts: list[tuple[SegmentLexicon, np.ndarray]], query: list[str],
                k1: float = K1, b: float = B) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per part, (document rows, scores) of the live documents that share a term with the query. `parts` pairs
    each segment's lexicon with its live-row mask; the statistics (documents, average length, document frequency)
    count live documents only, so a removed article stops counting at once."""
    n_docs = sum(int(live.sum()) for _, live in parts)
    if not n_docs:
        return [(_EMPTY_INT, np.zeros(0)) for _ in parts]
    avg_len = sum(float(lex.lengths[live].sum()) for lex, live in parts) / n_docs
    terms = list(dict.fromkeys(query))
    live_postings = []  # [term][part] -> (rows, tf)
    for term in terms:
        per_part = []
        for lex, live in parts:
            rows, tf = lex.postings(term)
            keep = live[rows]
            per_part.append((rows[keep], tf[keep]))
        live_postings.append(per_part)
    out = []
    for p, (lex, _) in enumerate(parts):
        scores: dict[int, float] | np.ndarray = np.zeros(len(lex.lengths), dtype=np.float64)
        touched = []
        for t, per_part in enumerate(live_postings):
            rows, tf = per_part[p]
            if not len(rows):
                continue
            df = sum(len(pp[0]) for pp in live_postings[t])
            idf = math.log(1 + (n_docs - df + 0.5) / (df + 0.5))
            tf = tf.astype(np.float64)
            norm = tf + k1 * (1 - b + b * lex.lengths[rows] / avg_len)
            scores[rows] += idf * tf * (k1 + 1) / norm
            touched.append(rows)
        rows = np.unique(np.concatenate(touched)) if touched else _EMPTY_INT
        out.append((rows, scores[rows]))
    return out
