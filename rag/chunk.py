"""Arabic-aware sentence splitting and chunk packing, with character offsets into the article.

llama-index's SentenceSplitter does not know `؟` `؛` `،` and cuts Arabic mid-sentence; this is the
small piece it lacks. Chunks are returned as our `Chunk` records (and can become llama-index nodes).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from rag.records import Article, Chunk

# A sentence ends at . ! ? ؟ ؛ (possibly repeated or followed by closing quotes/brackets) followed by
# white space, or at a line break. "3.5" and "U.S." inside a line stay whole because no space follows.
_SENTENCE_END = re.compile(r"""[.!?\u061f\u061b\u2026]+["'\u201d\u2019\u00bb)\]]*(?=\s)|\n+""")


@dataclass(frozen=True)
class Span:
    start: int
    end: int


def split_sentences(text: str) -> list[Span]:
    """Sentence spans (offsets into `text`), trimmed of surrounding white space, empty ones dropped."""
    spans: list[Span] = []
    pos = 0
    for match in _SENTENCE_END.finditer(text):
        end = match.end() if match.group().strip() else match.start()
        spans.append(Span(pos, end))
        pos = match.end()
    spans.append(Span(pos, len(text)))
    trimmed = []
    for span in spans:
        segment = text[span.start:span.end]
        left = len(segment) - len(segment.lstrip())
        right = len(segment.rstrip())
        if right > left:
            trimmed.append(Span(span.start + left, span.start + right))
    return trimmed


def _word_count(text: str) -> int:
    return len(text.split())


def _approx_tokens(text: str) -> int:
    # e5's XLM-R vocabulary spends about 1.9 tokens per Arabic word; round up to stay under budget.
    return 2 * _word_count(text) + 2


class ArabicChunker:
    """Packs whole sentences into chunks of at most `max_words` words and `max_tokens` tokens,
    repeating the last `overlap_sentences` sentences of a chunk at the start of the next."""

    def __init__(self, max_words: int = 220, max_tokens: int = 480, overlap_sentences: int = 1,
                 count_tokens: Callable[[str], int] | None = None):
        if max_words < 1:
            raise ValueError(f"max_words must be positive, got {max_words}")
        if not 8 <= max_tokens <= 512:
            raise ValueError(f"max_tokens must be between 8 and 512 (e5's window), got {max_tokens}")
        if overlap_sentences < 0:
            raise ValueError(f"overlap_sentences must be >= 0, got {overlap_sentences}")
        self.max_words = max_words
        self.max_tokens = max_tokens
        self.overlap_sentences = overlap_sentences
        self.count_tokens = count_tokens or _approx_tokens

    def _fits(self, text: str) -> bool:
        return _word_count(text) <= self.max_words and self.count_tokens(text) <= self.max_tokens

    def _pieces(self, text: str) -> list[Span]:
        """Sentences, with any sentence too long for one chunk cut at word boundaries."""
        out: list[Span] = []
        for span in split_sentences(text):
            if self._fits(text[span.start:span.end]):
                out.append(span)
                continue
            words = [m.span() for m in re.finditer(r"\S+", text[span.start:span.end])]
            first = 0
            while first < len(words):
                last = first + 1
                while last < len(words) and self._fits(
                    text[span.start + words[first][0]: span.start + words[last][1]]
                ):
                    last += 1
                out.append(Span(span.start + words[first][0], span.start + words[last - 1][1]))
                first = last
        return out

    def split(self, article: Article) -> list[Chunk]:
        text = article.text
        pieces = self._pieces(text)
        chunks: list[Chunk] = []
        i = 0
        while i < len(pieces):
            j = i + 1
            while j < len(pieces) and self._fits(text[pieces[i].start:pieces[j].end]):
                j += 1
            start, end = pieces[i].start, pieces[j - 1].end
            chunks.append(Chunk(id=f"{article.id}#{len(chunks)}", article_id=article.id, n=len(chunks),
                                text=text[start:end], start=start, end=end))
            if j >= len(pieces):
                break
            # Overlap, but always move forward by at least one sentence.
            i = max(i + 1, j - self.overlap_sentences)
        return chunks
