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


class QueueLLM:
    """A chat model fed from a queue of replies (strings, or exceptions to raise); records what it was sent."""

    name = "fake:queue"

    def __init__(self, *replies):
        self.replies = list(replies)
        self.calls: list[list[dict]] = []

    def push(self, *replies) -> None:
        self.replies.extend(replies)

    def stream(self, messages, max_tokens=None):
        self.calls.append(messages)
        if not self.replies:
            raise AssertionError("QueueLLM: no reply queued for this call")
        reply = self.replies.pop(0)
        if isinstance(reply, BaseException):
            raise reply
        for i in range(0, len(reply), 7):  # stream in pieces, as a server does
            yield reply[i:i + 7]
