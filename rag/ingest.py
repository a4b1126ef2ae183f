"""Read articles from files (.txt .md .html .json .jsonl), clean them, and add them to the index.

Bad input never stops a batch: each unreadable file or record is reported with its origin and skipped.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterable, Iterator
from datetime import date
from pathlib import Path

import numpy as np

from rag.arabic import clean_unicode
from rag.chunk import split_sentences
from rag.jsonl import iter_jsonl
from rag.records import Article, IngestReport, SkippedInput

TEXT_SUFFIXES = {".txt", ".md"}
HTML_SUFFIXES = {".html", ".htm"}
JSON_SUFFIXES = {".json", ".jsonl"}
SIDECAR_SUFFIX = ".meta.json"  # metadata for the article file of the same stem
MAX_FILE_BYTES = 20 * 1024 * 1024

# Lines after which the rest of a page is site furniture, not the article (related stories, comments).
_TAIL_MARKERS = re.compile(
    r"^\s*(حول هذه القصة|المزيد من .{1,30}|الأكثر قراءة|قصص قد تهمك|اضف تعليقا|أضف تعليقا|أضف تعليقًا|"
    r"تصنيفات|Read more:?|Related:?)\s*$"
)
_READ_ALSO = re.compile(r"^\s*(اقرأ/ي أيضًا|اقرأ/ي أيضا|اقرأ أيضا|اقرأ أيضًا)\s*:?\s*$")
_BOILERPLATE_LINE = re.compile(
    r"^\s*(Published On \S+|time reading icon.*|.*دقائق القراءة\s*-?\s*\d+\s*|\d+\s*min read|"
    r"— .{0,80}\(@\w+\) \w+ \d{1,2}, \d{4})\s*$"
)
_EMBED_LINK = re.compile(r"\s*(pic\.twitter\.com/\w+|https?://t\.co/\w+)")
_HEADLINE_LIKE_MAX_WORDS = 18


class ArticleReader:
    """Turns paths into `Article`s; collects what it had to skip in `skipped`."""

    def __init__(self) -> None:
        self.skipped: list[SkippedInput] = []

    def read(self, paths: Iterable[str | Path]) -> Iterator[Article]:
        for path in _expand(paths, self.skipped):
            yield from self._read_file(path)

    def _skip(self, origin: str, reason: str) -> None:
        self.skipped.append(SkippedInput(origin=origin, reason=reason))

    def _read_file(self, path: Path) -> Iterator[Article]:
        origin = str(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            self._skip(origin, f"unreadable: {exc.strerror or exc}")
            return
        if len(data) > MAX_FILE_BYTES:
            self._skip(origin, f"too large ({len(data)} bytes; limit {MAX_FILE_BYTES})")
            return
        if b"\x00" in data[:8192]:
            self._skip(origin, "binary file, not text")
            return
        try:
            raw = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            self._skip(origin, f"not UTF-8 (byte {exc.start}): convert it with `iconv -t UTF-8`")
            return
        suffix = path.suffix.lower()
        if suffix in JSON_SUFFIXES:
            yield from self._read_records(path, raw)
            return
        meta = _read_sidecar(path, self._skip)
        text = html_to_text(raw) if suffix in HTML_SUFFIXES else raw
        if suffix in HTML_SUFFIXES and not meta.get("title"):
            meta["title"] = _html_title(raw)
        article = self._make(origin, {"id": path.stem, **meta, "text": text})
        if article:
            yield article

    def _read_records(self, path: Path, raw: str) -> Iterator[Article]:
        if path.suffix.lower() == ".json":
            try:
                parsed = json.loads(raw)
            except json.JSONDecodeError as exc:
                self._skip(f"{path}:{exc.lineno}", f"invalid JSON: {exc.msg}")
                return
            records = parsed if isinstance(parsed, list) else [parsed]
            numbered = [(f"{path}[{i}]", r) for i, r in enumerate(records)]
        else:
            numbered = []
            for lineno, record, error in iter_jsonl(raw):
                if error:
                    self._skip(f"{path}:{lineno}", error)
                else:
                    numbered.append((f"{path}:{lineno}", record))
        for origin, record in numbered:
            if not isinstance(record, dict):
                self._skip(origin, "record is not a JSON object")
                continue
            if not isinstance(record.get("text"), str) or not record["text"].strip():
                self._skip(origin, "record has no `text`")
                continue
            article = self._make(origin, record)
            if article:
                yield article

    def _make(self, origin: str, fields: dict) -> Article | None:
        text = clean_article_text(str(fields.get("text", "")))
        if not text.strip():
            self._skip(origin, "empty article (no text left after cleaning)")
            return None
        content_hash = hashlib.sha256(text.encode()).hexdigest()
        article_id = str(fields.get("id") or "").strip() or content_hash[:16]
        raw_date = str(fields.get("date") or "").strip()
        try:
            iso_date = date.fromisoformat(raw_date[:10]).isoformat() if raw_date else ""
        except ValueError:
            self._skip(origin, f"date {raw_date!r} is not ISO (YYYY-MM-DD); article kept without a date")
            iso_date = ""
        article = Article(
            id=article_id, text=text, title=str(fields.get("title") or "").strip(), date=iso_date,
            source=str(fields.get("source") or "").strip(), url=str(fields.get("url") or "").strip(),
            origin=origin,
        )
        # The hash covers metadata too: a corrected date or title must reach the index.
        article.content_hash = hashlib.sha256(
            article.model_dump_json(exclude={"origin", "content_hash"}).encode()
        ).hexdigest()
        return article


def _expand(paths: Iterable[str | Path], skipped: list[SkippedInput]) -> Iterator[Path]:
    supported = TEXT_SUFFIXES | HTML_SUFFIXES | JSON_SUFFIXES
    for given in paths:
        path = Path(given)
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                if child.name.endswith(SIDECAR_SUFFIX) or child.name.startswith("."):
                    continue
                if child.suffix.lower() in supported:
                    yield child
        elif path.is_file():
            if path.name.endswith(SIDECAR_SUFFIX):
                continue
            if path.suffix.lower() in supported:
                yield path
            else:
                skipped.append(SkippedInput(origin=str(path), reason=f"unsupported file type {path.suffix!r}; "
                                            "use .txt .md .html .json or .jsonl"))
        else:
            skipped.append(SkippedInput(origin=str(path), reason="no such file or folder"))


def _read_sidecar(path: Path, skip) -> dict:
    sidecar = path.with_name(path.stem + SIDECAR_SUFFIX)
    if not sidecar.is_file():
        return {}
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        skip(str(sidecar), f"metadata ignored: {exc}")
        return {}
    keep = ("id", "title", "date", "source", "url")
    return {k: meta[k] for k in keep if isinstance(meta, dict) and meta.get(k)}


def clean_article_text(text: str) -> str:
    """Drop web furniture (related links, widgets, embed links) and normalise Unicode."""
    lines = clean_unicode(text).split("\n")
    kept: list[str] = []
    skipping_links = False
    for line in lines:
        stripped = line.strip()
        if _READ_ALSO.match(stripped):
            skipping_links = True  # the next headline-like lines are links to other stories
            continue
        if _TAIL_MARKERS.match(stripped):
            break
        if skipping_links:
            if not stripped or _looks_like_headline(stripped):
                continue
            skipping_links = False
        if _BOILERPLATE_LINE.match(stripped):
            continue
        line = _EMBED_LINK.sub("", line).rstrip()
        kept.append(line)
    # Collapse runs of blank lines that removals leave behind.
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()


def _looks_like_headline(line: str) -> bool:
    return len(line.split()) <= _HEADLINE_LIKE_MAX_WORDS and not re.search(r"[.؟?!]$", line)


def html_to_text(html: str) -> str:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "noscript", "nav", "header", "footer", "aside", "form", "iframe",
                     "svg", "button", "menu"]):
        tag.decompose()
    root = soup.find("article") or soup.find("main") or soup.body or soup
    blocks = []
    for el in root.find_all(["h1", "h2", "h3", "h4", "p", "li", "blockquote", "pre"]):
        if el.find(["p", "li"]):  # text is taken from the innermost block
            continue
        line = " ".join(el.get_text(" ", strip=True).split())
        if line:
            blocks.append(line)
    if not blocks:
        blocks = [" ".join(s.split()) for s in root.get_text("\n").split("\n") if s.strip()]
    return "\n".join(blocks)


def _html_title(html: str) -> str:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    h1 = soup.find("h1")
    if h1 and h1.get_text(strip=True):
        return " ".join(h1.get_text(" ", strip=True).split())
    return " ".join(soup.title.get_text(" ", strip=True).split()) if soup.title else ""


class Ingestor:
    """Reads, chunks, embeds and stores articles; unchanged articles cost nothing, changed ones replace."""

    def __init__(self, store, embedder, chunker, sentence_vectors: bool = True, min_sentence_words: int = 3,
                 progress: bool = False):
        if min_sentence_words < 1:
            raise ValueError(f"min_sentence_words must be >= 1, got {min_sentence_words}")
        self.store = store
        self.embedder = embedder
        self.chunker = chunker
        self.sentence_vectors = sentence_vectors
        self.min_sentence_words = min_sentence_words
        self.progress = progress

    @classmethod
    def from_settings(cls, store, embedder, settings, progress: bool = False) -> Ingestor:
        from rag.chunk import ArabicChunker

        chunker = ArabicChunker(settings.chunk_max_words, settings.chunk_max_tokens,
                                settings.chunk_overlap_sentences, count_tokens=embedder.count_tokens)
        return cls(store, embedder, chunker, settings.sentence_vectors, settings.min_sentence_words, progress)

    def _sentences(self, chunk) -> list:
        spans = split_sentences(chunk.text)
        if not self.sentence_vectors or len(spans) < 2:
            return []  # a one-sentence chunk's own vector already is its sentence vector
        return [s for s in spans if len(chunk.text[s.start:s.end].split()) >= self.min_sentence_words]

    def ingest(self, paths: Iterable[str | Path]) -> IngestReport:
        started = time.perf_counter()
        reader = ArticleReader()
        report = IngestReport(index_dir=str(self.store.index_dir))
        pending: list[tuple[Article, list]] = []
        seen: set[str] = set()
        for article in reader.read(paths):
            if article.id in seen:
                reader.skipped.append(SkippedInput(origin=article.origin,
                                                   reason=f"duplicate article id {article.id!r} in this batch"))
                continue
            seen.add(article.id)
            existing = self.store.article(article.id)
            if existing is not None and existing.content_hash == article.content_hash:
                report.unchanged.append(article.id)
                continue
            (report.updated if existing else report.added).append(article.id)
            pending.append((article, self.chunker.split(article)))
        # One embedding call for every chunk and sentence: batching is where the CPU time goes.
        plan = [(article, [(chunk, self._sentences(chunk)) for chunk in chunks]) for article, chunks in pending]
        texts = [t for article, parts in plan for chunk, sentences in parts
                 for t in (passage_text(article, chunk), *(chunk.text[s.start:s.end] for s in sentences))]
        if plan:
            vectors = iter(self.embedder.embed_passages(texts, progress=self.progress) if texts else [])
            for article, parts in plan:
                chunk_rows, sentence_rows = [], []
                for chunk, sentences in parts:
                    chunk_rows.append(next(vectors))
                    sentence_rows += [(chunk.id, next(vectors), (s.start, s.end)) for s in sentences]
                chunks = [chunk for chunk, _ in parts]
                self.store.put_article(article, chunks, np.array(chunk_rows, dtype=np.float32),
                                       sentence_rows)
            self.store.save()
        report.chunks_embedded = sum(len(c) for _, c in pending)
        report.skipped = reader.skipped
        report.seconds = round(time.perf_counter() - started, 3)
        return report


def passage_text(article: Article, chunk) -> str:
    """What the embedder sees: the title gives a passage its topic when the chunk alone does not."""
    return f"{article.title}\n{chunk.text}" if article.title else chunk.text
