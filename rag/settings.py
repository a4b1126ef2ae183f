"""One settings object for the whole service (env prefix RAG_, or a .env file)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAG_", env_file=".env", extra="ignore")

    index_dir: Path = Path("index")
    models_dir: Path = Path(".models")
    data_dir: Path = Path("../shared/data")  # public benchmark data (XQuAD); never copied into the project

    # Embedder. "local": a sentence-transformers folder or name (default: e5-small prepared by `rag setup`).
    # "openai": any OpenAI-compatible /embeddings endpoint.
    embed_backend: Literal["local", "openai"] = "local"
    # "local" runtime: "onnx" (ONNX Runtime, 8-bit, exported at set-up; no torch import on the query path; XQuAD
    # recall within 0.003 of fp32) or "torch" (sentence-transformers, fp32; the default until the ONNX one held
    # recall). Vectors differ slightly: switching means `rag ingest --rebuild`.
    embed_runtime: Literal["torch", "onnx"] = "onnx"
    embed_model: str = ""
    embed_base_url: str = ""
    embed_api_key: str = ""
    embed_batch_size: int = Field(4, ge=1, le=512)  # small batches measured fastest on 2 cores
    query_prefix: str = "query: "
    passage_prefix: str = "passage: "
    threads: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)

    # Chunking: e5 reads 512 tokens at most; stay under with room for the prefix and title.
    chunk_max_words: int = Field(220, ge=20)
    chunk_max_tokens: int = Field(480, ge=32, le=510)
    chunk_overlap_sentences: int = Field(1, ge=0, le=5)

    # Ingest limits and durability: an article longer than this many characters is skipped with the reason (a
    # long news article is 5,000-30,000; a 10 MB text file is almost certainly a mistake); every this many
    # articles are committed as one generation, so an ingest that dies loses at most one batch; a second writer
    # waits for the index's lock, or with ingest_wait_for_lock=false exits at once with a message.
    max_article_chars: int = Field(200_000, ge=1_000)
    ingest_commit_every: int = Field(50, ge=1)
    ingest_wait_for_lock: bool = True

    # Sentence vectors: costs a second embedding pass at ingest; +4 points English R@1 on XQuAD (README).
    sentence_vectors: bool = True
    min_sentence_words: int = Field(3, ge=1)

    # The index: "local" (segments on this machine's disk) or "postgres" (PostgreSQL + pgvector at pg_dsn, tables
    # in pg_schema; many app processes on many machines share it). Local segments of at least ann_min_vectors
    # vectors get an HNSW index (approximate; recall measured by `rag bench scale`); both backends search HNSW with
    # ann_ef_search candidates; merge_factor local segments of one size level are merged into one (as Lucene).
    store: Literal["local", "postgres"] = "local"
    pg_dsn: str = ""
    pg_schema: str = "rag"
    ann_min_vectors: int = Field(100_000, ge=1)
    ann_ef_search: int = Field(96, ge=8, le=4096)
    merge_factor: int = Field(10, ge=2, le=100)

    # Retrieval
    top_k: int = Field(5, ge=1, le=100)
    candidates: int = Field(50, ge=1)
    sentence_weight: float = Field(0.5, ge=0.0, le=1.0)  # dense score = chunk cosine blended with best sentence
    bm25_weight: float = Field(0.5, ge=0.0)  # weight of the lexical vote when query and passages share a language
    fusion: Literal["zscore", "rrf"] = "zscore"
    rrf_k: int = Field(60, ge=1)

    # LLM: any OpenAI-compatible chat endpoint; empty base URL = the embedded model, served on 127.0.0.1.
    llm_base_url: str = ""
    llm_model: str = ""
    llm_api_key: str = Field(default="", validation_alias=AliasChoices("RAG_LLM_API_KEY", "OPENAI_API_KEY"))
    llm_timeout: float = Field(120.0, gt=0)
    llm_max_retries: int = Field(2, ge=0, le=10)
    llm_max_tokens: int = Field(200, ge=16, le=4096)
    llm_temperature: float = Field(0.0, ge=0.0, le=2.0)
    llm_context: int = Field(2048, ge=512)  # embedded model: context per slot
    # Embedded model: slots with their own prompt caches, so Arabic answers, English answers and follow-up
    # rewrites each keep their shared prefix (system prompt + example) cached instead of evicting each other; an
    # English briefing's translations decode 4 at once (README: briefings; answers measured no slower than with 3).
    llm_slots: int = Field(4, ge=1, le=8)
    # Embedded model: niceness added to its threads (Linux), so searches and pages are not queued behind a
    # generation; alone on the machine, the model still takes all of it (README: Reliability, load)
    llm_nice: int = Field(0, ge=0, le=19)

    # Answering
    answer_k: int = Field(2, ge=1, le=10)  # passages in the prompt: each costs prompt time on a CPU (README)
    answer_passage_words: int = Field(45, ge=10)  # excerpt per passage: its best-matching sentences
    # Below this best dense score, refuse without calling the LLM. English questions over Arabic text score
    # lower (cross-lingual cosines), so each language has its own floor; calibrated on evals/questions.jsonl.
    answer_min_score_ar: float = Field(0.80, ge=0.0, le=1.0)
    answer_min_score_en: float = Field(0.75, ge=0.0, le=1.0)
    # "extract": the model chooses a sentence and copies words from it, verified in code (small local models);
    # "generate": the model writes a cited answer, flagged by the same checks (strong endpoints). README.
    answer_mode: Literal["extract", "generate"] = "extract"
    answer_evidence_chunks: int = Field(3, ge=1, le=20)  # retrieved chunks whose sentences are candidates
    # English questions reach Arabic chunks by dense retrieval alone (no lexical vote across scripts), so the
    # answering chunk ranks lower; the sentence ranking's name vote then finds it among more (en-48h: 6th chunk).
    answer_evidence_chunks_en: int = Field(6, ge=1, le=20)
    answer_evidence_sentences: int = Field(4, ge=1, le=9)  # best-ranked sentences shown (one digit each)
    answer_evidence_words: int = Field(140, ge=20)  # and their words at most (prompt time on a CPU)
    # Who chooses the answering sentence: "code" (the ranking; the model copies from the sentences shown) or
    # "model" (it names one by number, read from its next-token probabilities; measured no better than the
    # ranking with the embedded model, README), refusing below answer_min_choice.
    answer_choice: Literal["code", "model"] = "code"
    # Read an asserted answer again with the sentences in reverse order and quote it unless the readings agree:
    # fewer wrong answers, fewer right ones, one more model call per asserted answer (measured trade in README).
    answer_confirm: bool = False
    answer_min_choice: float = Field(0.0, ge=0.0, le=1.0)
    # Arabic questions: refuse a span whose sentence holds less than this share of the question's words (README).
    answer_min_question_share: float = Field(0.4, ge=0.0, le=1.0)
    # English answers spell an Arabic name as attested (rag.names.NameRomanizer); an ISO country code ranks that
    # country's spellings first ("IQ": Kadhimi rather than Kazimi). Empty: every country's.
    names_country: str = Field("", max_length=2)

    # Briefings: two articles whose leads have at least this cosine, published within brief_group_days of each
    # other, report the same story (tuned with `rag bench brief`); a story prompt holds at most
    # brief_prompt_words words of passages, longer stories are summarised per batch first, then combined.
    brief_group_threshold: float = Field(0.96, ge=0.0, le=1.0)
    brief_group_days: int = Field(3, ge=0)
    brief_passage_words: int = Field(60, ge=10)
    brief_prompt_words: int = Field(200, ge=30)
    brief_max_tokens: int = Field(220, ge=32, le=4096)
    # extract: code chooses each story's key sentences (lead, then MMR over sentence vectors) and quotes them,
    # the model only renders English, checked; write: the model summarises the passages and code keeps what
    # it can verify (for a strong endpoint). `rag bench brief` measures both.
    brief_mode: Literal["extract", "write"] = "extract"
    # English in extract mode: facts (the Arabic quoted with its checked names, figures and dates in English) or
    # rendered (the model's rendering asserted when checks pass: for a stronger endpoint; see rag.brief.ENGLISH).
    brief_english: Literal["facts", "rendered"] = "facts"
    brief_story_sentences: int = Field(6, ge=1, le=20)
    brief_story_words: int = Field(170, ge=10, le=2000)
    # English briefings: translation calls sent at once (the embedded server decodes up to RAG_LLM_SLOTS of them
    # in one batch). At 1 a briefing's replies are the same every run; at more, a few differ (batched sums).
    brief_parallel: int = Field(4, ge=1, le=16)
    # Scheduled briefings (`rag serve`): cron syntax in UTC, e.g. "0 6 * * *" (06:00 daily); empty = no schedule.
    # Each run briefs the latest day in each language and format, stored under briefs_dir with its record; a
    # webhook URL, when set, receives the run and its briefings (JSON) after a run succeeds.
    brief_schedule: str = ""
    brief_langs: str = "ar,en"
    brief_formats: str = "md,html,json"
    briefs_dir: Path = Path("briefs")
    brief_webhook: str = ""
    cache_dir: Path = Path(".cache")

    # Generations at a time, shared by the app, the HTTP API and the CLI's service (1 for the embedded model on
    # 2 cores; more for a remote endpoint); an API request that waits longer than llm_queue_wait_s for one gets
    # 503 with Retry-After (the app's own queue shows readers their place instead), and so does one that finds
    # llm_queue_max requests already waiting: each waits on a thread of its own, apart from searches and reads.
    ui_llm_concurrency: int = Field(1, ge=1, le=64)
    llm_queue_wait_s: float = Field(60.0, gt=0)
    llm_queue_max: int = Field(16, ge=0, le=1000)
    ui_max_upload_mb: int = Field(10, ge=1, le=1024)
    max_question_chars: int = Field(2000, ge=10, le=100_000)
    # Web app login (user:password, comma-separated, or a file of such lines).
    auth: str = ""
    # HTTP API keys (comma-separated, or a file with one per line), sent as `Authorization: Bearer KEY`; empty =
    # the API is open (bind to 127.0.0.1, the default, or set keys before exposing it).
    api_keys: str = ""

    # Evaluation gate (`rag eval --baseline`): an aggregate quality metric may drop by this much (absolute),
    # latency p50 may grow by this fraction, before the run counts as worse than the baseline.
    eval_tolerance: float = Field(0.05, ge=0.0, le=1.0)
    eval_latency_tolerance: float = Field(1.0, ge=0.0)
    # Optional LLM judge (`rag eval --judge`): any OpenAI-compatible endpoint; empty = the answering model.
    judge_base_url: str = ""
    judge_model: str = ""
    judge_api_key: str = ""

    @model_validator(mode="after")
    def _check(self):
        if self.embed_backend == "openai" and not (self.embed_base_url and self.embed_model):
            raise ValueError("RAG_EMBED_BACKEND=openai needs RAG_EMBED_BASE_URL and RAG_EMBED_MODEL")
        return self

    @property
    def embedded_llm_path(self) -> Path:
        return self.models_dir / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"

    @property
    def local_embed_model(self) -> str:
        return self.embed_model or str(self.models_dir / "multilingual-e5-small")
