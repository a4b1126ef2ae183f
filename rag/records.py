"""Typed records passed between stages; the CLI's JSON is these records serialised."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Article(BaseModel):
    id: str
    text: str  # cleaned display text: offsets, quotes and highlights refer to this
    title: str = ""
    date: str = ""  # ISO YYYY-MM-DD, or empty when the article does not say
    source: str = ""
    url: str = ""
    origin: str = ""  # file (and line) it came from
    content_hash: str = ""


class Chunk(BaseModel):
    id: str  # "<article_id>#<n>": stable for a given article version
    article_id: str
    n: int
    text: str
    start: int  # character offsets into Article.text
    end: int


class Hit(BaseModel):
    rank: int
    chunk_id: str
    article_id: str
    title: str
    text: str
    score: float
    source: str = ""
    date: str = ""
    start: int = 0
    end: int = 0
    scores: dict[str, float] = Field(default_factory=dict)  # per-retriever scores, for debugging


class SkippedInput(BaseModel):
    origin: str  # file, or file:line
    reason: str


class IngestReport(BaseModel):
    added: list[str] = Field(default_factory=list)
    updated: list[str] = Field(default_factory=list)
    unchanged: list[str] = Field(default_factory=list)
    skipped: list[SkippedInput] = Field(default_factory=list)
    chunks_embedded: int = 0
    seconds: float = 0.0
    index_dir: str = ""


class Citation(BaseModel):
    n: int  # the number the model used, [n]
    chunk_id: str
    article_id: str
    title: str
    source: str = ""
    date: str = ""
    text: str  # the excerpt the model was shown
    start: int = 0  # offsets of the excerpt in the article's text, for highlighting
    end: int = 0


class Flag(BaseModel):
    kind: str  # invalid_citation | uncited_sentence | unsupported_figure | unverified_name | unverified_span | …
    detail: str


class Answer(BaseModel):
    question: str
    lang: str
    answer: str
    refused: bool = False
    # True when the answer quotes the article's words because an answer in the question's words could not be
    # verified: shown as evidence, never asserted.
    quoted: bool = False
    standalone_question: str = ""  # the follow-up rewritten with the conversation, when there was one
    citations: list[Citation] = Field(default_factory=list)
    flags: list[Flag] = Field(default_factory=list)
    dropped_citations: int = 0
    evidence: list[Citation] = Field(default_factory=list)  # the sentence the answer was taken from
    confidence: float | None = None  # the model's probability for its choice of that sentence, when known
    timings: dict[str, float] = Field(default_factory=dict)  # retrieve_s, evidence_s, first_token_s, total_s


class BriefCitation(BaseModel):
    n: int
    article_id: str
    title: str
    source: str = ""
    date: str = ""
    chunk_id: str = ""
    text: str = ""  # the passage the summary was written from
    start: int = 0
    end: int = 0


class Story(BaseModel):
    headline: str
    summary: str  # 2-4 sentences, each with [n] markers resolved in `citations`
    article_ids: list[str] = Field(default_factory=list)  # every article that covers the story
    citations: list[BriefCitation] = Field(default_factory=list)
    flags: list[Flag] = Field(default_factory=list)


class Briefing(BaseModel):
    lang: str
    date_from: str = ""
    date_to: str = ""
    title: str
    stories: list[Story] = Field(default_factory=list)
    undated: list[str] = Field(default_factory=list)  # article ids with no publication date
    message: str = ""  # said plainly when there is nothing to brief
    timings: dict[str, float] = Field(default_factory=dict)
