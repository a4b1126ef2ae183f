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
    """A chat model that "answers" by word overlap with the question, so answers get worse exactly when
    retrieval, ranking or checks do. Free writing: it quotes the passage sentence sharing most words with the
    question, with its citation, or refuses. Extract design: it picks the numbered sentence sharing most words
    (none: a refusal, or "0" when asked for a number only), and copies from it a figure and its noun for a "how
    many" question, else up to 4 words after the last word of it that the question holds, as `words [n]` (it
    cannot translate: English questions get Arabic words, which the chain does not assert)."""

    name = "fake:extractive"

    def __init__(self, refusal: str = "لا تذكر المقالات ذلك."):
        self.refusal = refusal
        self.calls = 0

    @staticmethod
    def _question(messages) -> str:
        import re

        for message in messages:
            found = re.search(r"^(?:Question|السؤال): (.+)$", message["content"], flags=re.M)
            if found:
                return found.group(1)
        return ""

    @staticmethod
    def _copy(sentence: str, question: str, asked: set[str]) -> str:
        import re

        words = sentence.split()
        figure = next((i for i, w in enumerate(words) if any(c.isdigit() for c in w)), None)
        if figure is not None and re.search(r"(?:^|\s)كم\s|how (?:many|much)", question, flags=re.I):
            return " ".join(words[figure:figure + 2])  # a "how many" question: the figure and its noun
        cues = [i for i, w in enumerate(words) if set(tokenize_for_search(w)) & asked]
        start = cues[-1] + 1 if cues and cues[-1] + 1 < len(words) else 0
        return " ".join(words[start:start + 4])

    def stream(self, messages, max_tokens=None):
        import re

        self.calls += 1
        prompt = messages[-1]["content"]
        question = self._question(messages)
        asked = set(tokenize_for_search(question))
        choices = re.findall(r"^\[(\d+)\] (?!\()(.+)$", prompt, flags=re.M)
        if choices:
            overlaps = [len(asked & set(tokenize_for_search(text))) for _, text in choices]
            n, text = choices[overlaps.index(max(overlaps))]
            if re.search(r"number only|الرقم فقط", prompt):
                yield n if max(overlaps) else "0"  # choosing by number; 0: none answers
            elif not max(overlaps):
                yield self.refusal
            else:
                yield f"{self._copy(text, question, asked)} [{n}]"
            return
        if not asked:
            asked = set(tokenize_for_search(prompt.rsplit("\n", 1)[-1]))
        best, best_overlap = None, 0
        for n, text in re.findall(r"^\[(\d+)\] \([^)]*\) (.+)$", prompt, flags=re.M):
            for part in re.split(r"(?<=[.!?؟…])\s+", text):
                overlap = len(asked & set(tokenize_for_search(part)))
                if overlap > best_overlap:
                    best, best_overlap = f"{part.rstrip('.…')} [{n}].", overlap
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
