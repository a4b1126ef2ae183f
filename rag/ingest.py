"""Read articles from files (.txt .md .html .json .jsonl), clean them, and add them to the index.

Bad input never stops a batch: each unreadable file or record is reported with its origin and skipped.
"""

from __future__ import annotations

import codecs
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
from rag.records import Article, IngestReport, SkippedInput
from rag.verify import CONTROL_TOKENS

TEXT_SUFFIXES = {".txt", ".md"}
HTML_SUFFIXES = {".html", ".htm"}
JSON_SUFFIXES = {".json", ".jsonl"}
SIDECAR_SUFFIX = ".meta.json"  # metadata for the article file of the same stem
MAX_JSON_BYTES = 50 * 1024 * 1024  # one .json document is read whole; bigger feeds belong in .jsonl (streamed)
MAX_ID_CHARS = 120
MAX_FIELD_CHARS = 2_000  # title, source, url

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
_TEMPLATE_TOKENS = re.compile(CONTROL_TOKENS.pattern + r"|\[/?(?:INST|SYS|SYSTEM)\]|<</?SYS>>", re.IGNORECASE)


class ArticleReader:
    """Turns paths into `Article`s; collects what it had to skip in `skipped`, and what it used but changed (an
    unsafe id, a dropped date) in `warnings`."""

    def __init__(self, max_chars: int = 200_000) -> None:
        self.max_chars = max_chars
        self.skipped: list[SkippedInput] = []
        self.warnings: list[SkippedInput] = []

    def read(self, paths: Iterable[str | Path]) -> Iterator[Article]:
        for path in expand_paths(paths, self.skipped):
            yield from self._read_file(path)

    def _skip(self, origin: str, reason: str) -> None:
        self.skipped.append(SkippedInput(origin=origin, reason=reason))

    def _too_long(self, chars: int) -> str:
        return (f"{chars:,} characters; the limit is {self.max_chars:,} (RAG_MAX_ARTICLE_CHARS): split it, or raise "
                "the limit if it really is one article")

    def _read_file(self, path: Path) -> Iterator[Article]:
        origin = str(path)
        suffix = path.suffix.lower()
        if suffix == ".jsonl":  # streamed line by line: a feed export may hold millions of records
            yield from self._read_jsonl(path)
            return
        try:
            size = path.stat().st_size
            # A character takes 1-4 bytes in UTF-8, 2 in UTF-16: past this size no decoding can fit the limit.
            limit = MAX_JSON_BYTES if suffix == ".json" else self.max_chars * 4 + 4
            if size > limit:
                self._skip(origin, f"too large ({size:,} bytes): " + (
                    f"the limit for a .json file is {MAX_JSON_BYTES:,} bytes; use .jsonl for big feeds"
                    if suffix == ".json" else self._too_long(size // 4)))
                return
            data = path.read_bytes()
        except OSError as exc:
            self._skip(origin, f"unreadable: {exc.strerror or exc}")
            return
        raw, problem = decode_text(data)
        if raw is None:
            self._skip(origin, problem)
            return
        if suffix == ".json":
            yield from self._read_json(path, raw)
            return
        meta = _read_sidecar(path, self._skip)
        text = html_to_text(raw) if suffix in HTML_SUFFIXES else raw
        if suffix in HTML_SUFFIXES and not meta.get("title"):
            meta["title"] = _html_title(raw)
        article = self._make(origin, {"id": path.stem, **meta, "text": text})
        if article:
            yield article

    def _read_json(self, path: Path, raw: str) -> Iterator[Article]:
        try:
            parsed = json.loads(raw)
        except json.JSONDecodeError as exc:
            self._skip(f"{path}:{exc.lineno}", f"invalid JSON: {exc.msg}")
            return
        except RecursionError:
            self._skip(str(path), "JSON nested too deeply to be an article list")
            return
        records = parsed if isinstance(parsed, list) else [parsed]
        for i, record in enumerate(records):
            yield from self._record(f"{path}[{i}]", record)

    def _read_jsonl(self, path: Path) -> Iterator[Article]:
        try:
            handle = open(path, "rb")
        except OSError as exc:
            self._skip(str(path), f"unreadable: {exc.strerror or exc}")
            return
        with handle:
            for lineno, line in enumerate(handle, start=1):
                origin = f"{path}:{lineno}"
                if lineno == 1 and line.startswith(codecs.BOM_UTF8):
                    line = line[len(codecs.BOM_UTF8):]
                if not line.strip():
                    continue
                if len(line) > self.max_chars * 4 + 4096:
                    self._skip(origin, "record too large: " + self._too_long(len(line) // 4))
                    continue
                try:
                    record = json.loads(line.decode("utf-8"))
                except UnicodeDecodeError as exc:
                    self._skip(origin, f"not UTF-8 (byte {exc.start}): convert the file with `iconv -t UTF-8`")
                    continue
                except json.JSONDecodeError as exc:
                    self._skip(origin, f"invalid JSON: {exc.msg}")
                    continue
                except RecursionError:
                    self._skip(origin, "JSON nested too deeply to be an article")
                    continue
                yield from self._record(origin, record)

    def _record(self, origin: str, record) -> Iterator[Article]:
        if not isinstance(record, dict):
            self._skip(origin, "record is not a JSON object")
        elif not isinstance(record.get("text"), str) or not record["text"].strip():
            self._skip(origin, "record has no `text`")
        else:
            article = self._make(origin, record)
            if article:
                yield article

    def _make(self, origin: str, fields: dict) -> Article | None:
        if len(str(fields.get("text", ""))) > self.max_chars:
            self._skip(origin, self._too_long(len(str(fields["text"]))))
            return None
        text = clean_article_text(str(fields.get("text", "")))
        if not text.strip():
            self._skip(origin, "empty article (no text left after cleaning)")
            return None
        content_hash = hashlib.sha256(text.encode()).hexdigest()
        given_id = str(fields.get("id") or "").strip()
        article_id, changed = safe_article_id(given_id) if given_id else (content_hash[:16], False)
        if changed:
            self.warnings.append(SkippedInput(origin=origin, reason=f"id {given_id[:80]!r} made safe as {article_id!r}"))
        raw_date = str(fields.get("date") or "").strip()
        try:
            iso_date = date.fromisoformat(raw_date[:10]).isoformat() if raw_date else ""
        except ValueError:
            self.warnings.append(SkippedInput(origin=origin, reason=f"date {raw_date[:40]!r} is not ISO (YYYY-MM-DD); "
                                                                    "article kept without a date"))
            iso_date = ""

        def field(name: str) -> str:
            return clean_unicode(" ".join(str(fields.get(name) or "").split()))[:MAX_FIELD_CHARS]

        article = Article(id=article_id, text=text, title=field("title"), date=iso_date, source=field("source"),
                          url=field("url"), origin=origin)
        # The hash covers metadata too: a corrected date or title must reach the index.
        article.content_hash = hashlib.sha256(
            article.model_dump_json(exclude={"origin", "content_hash"}).encode()
        ).hexdigest()
        return article


def decode_text(data: bytes) -> tuple[str | None, str]:
    """Text from bytes: UTF-8 (with or without a BOM) or UTF-16 with its BOM; else None and the reason."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16"), ""
        except UnicodeDecodeError:
            return None, "broken UTF-16: convert it with `iconv -f UTF-16 -t UTF-8`"
    if b"\x00" in data[:8192]:
        return None, "binary file, not text"
    try:
        return data.decode("utf-8"), ""
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 (byte {exc.start}): convert it with `iconv -t UTF-8`"


_UNSAFE_ID = re.compile(r"[/\\\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]+")


def safe_article_id(given: str) -> tuple[str, bool]:
    """The id as given when it is safe as a file name and a path segment (callers keep their own ids: spaces and
    punctuation stay); path separators, control and invisible characters become '_', '..' never stays, no
    leading dot, at most 120 characters. True when it had to change."""
    cleaned = re.sub(r"\.{2,}", "_", _UNSAFE_ID.sub("_", given)).strip().lstrip(".")
    if len(cleaned) > MAX_ID_CHARS:
        cleaned = cleaned[:MAX_ID_CHARS - 17].rstrip("._-") + "_" + hashlib.sha256(given.encode()).hexdigest()[:16]
    cleaned = cleaned or hashlib.sha256(given.encode()).hexdigest()[:16]
    return cleaned, cleaned != given


def expand_paths(paths: Iterable[str | Path], skipped: list[SkippedInput]) -> Iterator[Path]:
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
    """Drop web furniture (related links, widgets, embed links) and normalise Unicode. Chat-template tokens
    (`<|im_start|>`, `[INST]`) are never news: each becomes a line break, so the instruction they wrap is a
    sentence of its own, which the answer chain and briefings then leave out (rag.verify.is_instruction)."""
    lines = _TEMPLATE_TOKENS.sub("\n", clean_unicode(text)).split("\n")
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
    """Reads, chunks, embeds and stores articles; unchanged articles cost nothing, changed ones replace.

    Articles are read as a stream and committed every `commit_every` articles (one generation each): an ingest
    that dies keeps what it had committed, and a rerun skips those articles as unchanged."""

    def __init__(self, store, embedder, chunker, sentence_vectors: bool = True, min_sentence_words: int = 3,
                 progress: bool = False, max_chars: int = 200_000, commit_every: int = 50):
        if min_sentence_words < 1:
            raise ValueError(f"min_sentence_words must be >= 1, got {min_sentence_words}")
        if commit_every < 1:
            raise ValueError(f"commit_every must be >= 1, got {commit_every}")
        self.store = store
        self.embedder = embedder
        self.chunker = chunker
        self.sentence_vectors = sentence_vectors
        self.min_sentence_words = min_sentence_words
        self.progress = progress
        self.max_chars = max_chars
        self.commit_every = commit_every

    @classmethod
    def from_settings(cls, store, embedder, settings, progress: bool = False) -> Ingestor:
        from rag.chunk import ArabicChunker

        chunker = ArabicChunker(settings.chunk_max_words, settings.chunk_max_tokens,
                                settings.chunk_overlap_sentences, count_tokens=embedder.count_tokens)
        return cls(store, embedder, chunker, settings.sentence_vectors, settings.min_sentence_words, progress,
                   settings.max_article_chars, settings.ingest_commit_every)

    def _sentences(self, chunk) -> list:
        spans = split_sentences(chunk.text)
        if not self.sentence_vectors or len(spans) < 2:
            return []  # a one-sentence chunk's own vector already is its sentence vector
        return [s for s in spans if len(chunk.text[s.start:s.end].split()) >= self.min_sentence_words]

    def ingest(self, paths: Iterable[str | Path]) -> IngestReport:
        started = time.perf_counter()
        reader = ArticleReader(self.max_chars)
        report = IngestReport(index_dir=str(self.store.index_dir))
        pending: dict[str, Article] = {}
        origin_of: dict[str, str] = {}
        status: dict[str, str] = {}  # id -> added | updated | unchanged: one entry per id, however often it comes
        for article in reader.read(paths):
            if article.id in origin_of:  # the same id twice in one batch: the last one wins
                reader.warnings.append(SkippedInput(origin=article.origin, reason=(
                    f"duplicate article id {article.id!r} (also {origin_of[article.id]}): this later one is kept")))
            origin_of[article.id] = article.origin
            pending.pop(article.id, None)
            existing = self.store.article(article.id)
            if existing is not None and existing.content_hash == article.content_hash:
                status.setdefault(article.id, "unchanged")  # an earlier copy committed in this run stays added
                continue
            pending[article.id] = article
            if len(pending) >= self.commit_every:
                self._commit(list(pending.values()), status, report)
                pending.clear()
        if pending:
            self._commit(list(pending.values()), status, report)
        for article_id, kind in status.items():
            getattr(report, kind).append(article_id)
        report.skipped = reader.skipped
        report.warnings = reader.warnings
        report.seconds = round(time.perf_counter() - started, 3)
        return report

    def _commit(self, articles: list[Article], status: dict[str, str], report: IngestReport) -> None:
        """Embed a batch (one call: batching is where the CPU time goes), store it, commit a generation."""
        plan = [self.plan(article) for article in articles]
        texts = [t for _, _, its_texts in plan for t in its_texts]
        vectors = iter(embed_once(self.embedder, texts, self.progress))
        for article, parts, _ in plan:
            self.put(article, parts, vectors, status, report)
        self.store.save()
        report.commits += 1

    def plan(self, article: Article) -> tuple[Article, list, list[str]]:
        """The article's chunks with the sentences to embed, and the texts to embed in order: each chunk's passage
        text, then its sentences."""
        parts = [(chunk, self._sentences(chunk)) for chunk in self.chunker.split(article)]
        texts = [t for chunk, sentences in parts
                 for t in (passage_text(article, chunk), *(chunk.text[s.start:s.end] for s in sentences))]
        return article, parts, texts

    def put(self, article: Article, parts: list, vectors: Iterator, status: dict[str, str],
            report: IngestReport) -> None:
        """Store one planned article with its vectors (taken from `vectors` in `plan`'s order); not committed."""
        if status.get(article.id) not in ("added", "updated"):
            status[article.id] = "updated" if self.store.article(article.id) else "added"
        chunk_rows, sentence_rows = [], []
        for chunk, sentences in parts:
            chunk_rows.append(next(vectors))
            sentence_rows += [(chunk.id, next(vectors), (s.start, s.end)) for s in sentences]
        self.store.put_article(article, [chunk for chunk, _ in parts], np.array(chunk_rows, dtype=np.float32),
                               sentence_rows)
        report.chunks_embedded += len(parts)


def embed_once(embedder, texts: list[str], progress=False) -> np.ndarray:
    """Passage vectors for `texts`, in order, each distinct text embedded once: chunks overlap by a sentence
    (RAG_CHUNK_OVERLAP_SENTENCES), so that sentence's vector was computed twice, and a caption may repeat."""
    if not texts:
        return np.zeros((0, 0), np.float32)
    row = {text: i for i, text in enumerate(dict.fromkeys(texts))}
    vectors = embedder.embed_passages(list(row), progress=progress)
    return vectors[[row[text] for text in texts]]


def passage_text(article: Article, chunk) -> str:
    """What the embedder sees: the title gives a passage its topic when the chunk alone does not."""
    return f"{article.title}\n{chunk.text}" if article.title else chunk.text
