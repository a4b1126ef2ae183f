"""Typed records passed between stages; the JSON of the CLI and the HTTP API is these records serialised.

Field docstrings are the descriptions in the API's schema (/docs)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Record(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)


class Article(Record):
    id: str
    """Stable id: the file's stem, or the record's `id`."""
    text: str
    """Cleaned display text: offsets, quotes and highlights refer to it."""
    title: str = ""
    date: str = ""
    """Publication day, YYYY-MM-DD, or empty when the article does not say."""
    source: str = ""
    """The outlet."""
    url: str = ""
    origin: str = ""
    """The file (and line) it came from."""
    content_hash: str = ""


class ArticleInfo(Record):
    """An article as listed in the library: its metadata, not its text."""

    id: str
    title: str = ""
    source: str = ""
    date: str = ""
    url: str = ""
    chunks: int = 0
    """Passages it was split into."""


class Chunk(Record):
    id: str
    """`<article_id>#<n>`: stable for a given article version."""
    article_id: str
    n: int
    text: str
    start: int
    """Character offset into Article.text."""
    end: int


class Hit(Record):
    rank: int
    """1 = best."""
    chunk_id: str
    article_id: str
    title: str
    text: str
    """The passage."""
    score: float
    """Fused retrieval score (higher is better; comparable within one query only)."""
    source: str = ""
    date: str = ""
    start: int = 0
    """Offsets of the passage in the article's text."""
    end: int = 0
    scores: dict[str, float] = Field(default_factory=dict)
    """Per-retriever scores (dense, bm25), for debugging."""


class Retrieval(Record):
    """The passages found for a question: what `rag retrieve --json` prints and POST /api/retrieve returns."""

    question: str
    """As searched: invisible and direction-overriding characters removed."""
    lang: str
    """ar or en: the question's language."""
    hits: list[Hit]


class SkippedInput(Record):
    origin: str
    """The file, or file:line, or record:n."""
    reason: str


class IngestReport(Record):
    added: list[str] = Field(default_factory=list)
    """Ids of new articles."""
    updated: list[str] = Field(default_factory=list)
    """Ids whose text or metadata changed (re-embedded)."""
    unchanged: list[str] = Field(default_factory=list)
    skipped: list[SkippedInput] = Field(default_factory=list)
    """What could not be used, with the reason."""
    warnings: list[SkippedInput] = Field(default_factory=list)
    """What was used but changed: an id made safe, a duplicate id (the last one wins), a date dropped."""
    chunks_embedded: int = 0
    commits: int = 0
    """Generations committed (one per RAG_INGEST_COMMIT_EVERY articles)."""
    seconds: float = 0.0
    index_dir: str = ""


class Citation(Record):
    n: int
    """The number used in the answer's text, [n]."""
    chunk_id: str
    article_id: str
    title: str
    source: str = ""
    date: str = ""
    text: str
    """The excerpt the answer was taken from."""
    start: int = 0
    """Offsets of the excerpt in the article's text, for highlighting."""
    end: int = 0


class Flag(Record):
    kind: str
    """invalid_citation | uncited_sentence | unsupported_figure | unverified_name | unverified_span | off_topic | …"""
    detail: str


class Answer(Record):
    question: str
    lang: str
    """ar or en: the question's language, and the answer's."""
    answer: str
    """The answer with its [n] citation markers."""
    refused: bool = False
    """True when the articles do not hold the answer (said plainly, no citation)."""
    quoted: bool = False
    """True when the answer quotes the article's sentence because an answer in the question's own words could not
    be verified: evidence to read, not an asserted fact."""
    standalone_question: str = ""
    """The follow-up rewritten with the conversation, when there was one."""
    citations: list[Citation] = Field(default_factory=list)
    flags: list[Flag] = Field(default_factory=list)
    """What the verifier found and removed or distrusted."""
    dropped_citations: int = 0
    """[n] markers that pointed at no passage and were removed."""
    evidence: list[Citation] = Field(default_factory=list)
    """The sentence the answer was taken from."""
    confidence: float | None = None
    """The model's probability for its choice of that sentence, when known."""
    timings: dict[str, float] = Field(default_factory=dict)
    """Seconds: queue_s (waiting for a generation slot), retrieve_s, evidence_s, first_token_s, total_s; and, where
    the server reports them (the embedded model), prompt_tokens sent and cached_tokens of them from its cache."""


class BriefCitation(Record):
    n: int
    article_id: str
    title: str
    source: str = ""
    date: str = ""
    chunk_id: str = ""
    text: str = ""
    """The passage the summary was written from."""
    start: int = 0
    end: int = 0


class Story(Record):
    headline: str
    summary: str
    """2-4 sentences, each with [n] markers resolved in `citations`."""
    article_ids: list[str] = Field(default_factory=list)
    """Every article that covers the story."""
    citations: list[BriefCitation] = Field(default_factory=list)
    flags: list[Flag] = Field(default_factory=list)


class Briefing(Record):
    lang: str
    date_from: str = ""
    date_to: str = ""
    title: str
    stories: list[Story] = Field(default_factory=list)
    undated: list[str] = Field(default_factory=list)
    """Ids of articles with no publication date."""
    message: str = ""
    """Said plainly when there is nothing to brief."""
    timings: dict[str, float] = Field(default_factory=dict)


class BriefRun(Record):
    """One run of the briefing schedule (or of "Run now"), as the history lists it."""
    id: str
    started: str
    """When the run began, ISO 8601, UTC."""
    finished: str = ""
    status: str = "running"
    """running, ok or failed."""
    trigger: str = "manual"
    """schedule or manual."""
    langs: list[str] = Field(default_factory=list)
    article_ids: list[str] = Field(default_factory=list)
    """The articles the briefings cover."""
    stories: int = 0
    flags: int = 0
    """Warnings shown to readers, summed over the run's briefings."""
    seconds: float = 0.0
    files: list[str] = Field(default_factory=list)
    """The run's files, e.g. briefing-ar.md; fetch one at /api/briefs/{id}/files/{name}."""
    error: str = ""
    """Why a failed run failed; it is retried at the next tick."""
    webhook: str = ""
    """Delivery to RAG_BRIEF_WEBHOOK: sent, failed (why), or empty when none is set."""
