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


class ExtractiveLLM:
    """A chat model that "answers" by quoting the passage sentence sharing most words with the question, with
    its citation, and refuses when none shares any: answers get worse exactly when retrieval does."""

    name = "fake:extractive"

    def __init__(self, refusal: str = "لا تذكر المقالات ذلك."):
        self.refusal = refusal
        self.calls = 0

    def stream(self, messages, max_tokens=None):
        import re

        self.calls += 1
        prompt = messages[-1]["content"]
        question = prompt.rsplit("\n", 1)[-1]
        asked = set(tokenize_for_search(question))
        best, best_overlap = None, 0
        for n, text in re.findall(r"^\[(\d+)\] \([^)]*\) (.+)$", prompt, flags=re.M):
            for sentence in re.split(r"(?<=[.!?؟…])\s+", text):
                overlap = len(asked & set(tokenize_for_search(sentence)))
                if overlap > best_overlap:
                    best, best_overlap = f"{sentence.rstrip('.…')} [{n}].", overlap
        yield best or self.refusal


class SummaryLLM:
    """A chat model that "summarises" a briefing prompt: a headline line, then the first words of each numbered
    passage with its citation; a combining prompt gets its partial summaries joined. Records each prompt."""

    name = "fake:summary"

    def __init__(self, headline: str = "عنوان الخبر"):
        self.headline = headline
        self.prompts: list[str] = []

    def stream(self, messages, max_tokens=None):
        import re

        prompt = messages[-1]["content"]
        self.prompts.append(prompt)
        passages = re.findall(r"^\[(\d+)\] \([^)]*\) (.+)$", prompt, flags=re.M)
        if passages:
            body = " ".join(f"{' '.join(text.split()[:8])} [{n}]." for n, text in passages)
        else:
            body = " ".join(re.findall(r"^- (.+)$", prompt, flags=re.M))
        yield f"{self.headline}\n{body}"
