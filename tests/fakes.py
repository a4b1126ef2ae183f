"""Deterministic stand-ins for the models, so unit tests run offline in milliseconds."""

from __future__ import annotations

import hashlib

import numpy as np

from rag.arabic import tokenize_for_search


class HashEmbedder:
    """Bag of hashed, normalised tokens: texts sharing words get similar vectors; same text, same vector."""

    def __init__(self, dim: int = 64, name: str = "fake:hash"):
        self.dim = dim
        self.name = name
        self.passage_calls = 0
        self.passages_embedded = 0

    def _vector(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        for tok in tokenize_for_search(text) or ["<empty>"]:
            h = int.from_bytes(hashlib.blake2b(tok.encode(), digest_size=8).digest(), "little")
            v[h % self.dim] += 1.0 if (h >> 32) & 1 else -1.0
        n = np.linalg.norm(v)
        return v / n if n else v

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return np.stack([self._vector(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)

    def embed_passages(self, texts: list[str], progress: bool = False) -> np.ndarray:
        self.passage_calls += 1
        self.passages_embedded += len(texts)
        return self.embed_queries(texts)

    def count_tokens(self, text: str) -> int:
        return 2 * len(text.split()) + 2
