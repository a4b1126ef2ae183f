"""The application layer: one `Service` owns the models, the index, the generation slots and the write lock.

The CLI, the web app (`rag.ui`) and the HTTP API (`rag.api`) are faces over it, so the same question gives the
same `Answer` record whichever way it is asked. Collaborators are built lazily from `Settings` (tests pass fakes);
the index is reopened when another process commits a new generation.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Generator, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from rag.errors import BadInput, Busy, NotFound, RagError
from rag.records import Answer, Article, ArticleInfo, Briefing, IngestReport, Retrieval, SkippedInput
from rag.settings import Settings

UPLOAD_TYPES = (".txt", ".md", ".html", ".htm", ".json", ".jsonl")


def safe_name(name: str) -> str:
    """An uploaded file's name reduced to a harmless stem (it becomes the article id), never a path."""
    stem = re.sub(r"[^\w\-]+", "_", Path(name).stem, flags=re.UNICODE).strip("_")[:80]
    return stem or "upload"


def _without_server_paths(report: IngestReport, staged: str, shown_as: str) -> IngestReport:
    """Reports never show the server's temporary paths: what was skipped or changed names what the user sent."""
    for item in report.skipped + report.warnings:
        item.origin = item.origin.replace(staged, shown_as)
        item.reason = item.reason.replace(staged, shown_as)  # a duplicate's note names the other copy
    report.index_dir = ""
    return report


class GenerationSlots:
    """At most `limit` generations at once (the embedded model on 2 cores: one), shared by every face.

    A caller waits up to `wait_s` for a slot, then gets `Busy` with an estimate of when to retry, instead of
    hanging: an HTTP client turns that into 503 + Retry-After. So does a caller that finds `max_waiting` already
    waiting (each waiter holds a thread), or whose estimated wait is longer than it may wait (`admit`)."""

    def __init__(self, limit: int, wait_s: float, max_waiting: int = 16):
        self.limit, self.wait_s, self.max_waiting = limit, wait_s, max_waiting
        self._free = threading.BoundedSemaphore(limit)
        self._lock = threading.Lock()
        self.running = self.waiting = 0
        self._mean_s = 8.0  # seconds per generation, updated as they finish (a prior for the first Retry-After)

    @contextmanager
    def hold(self, wait_s: float | None = None):
        wait_s = self.wait_s if wait_s is None else wait_s
        started = time.perf_counter()
        with self._lock:
            if self.queue_full():
                raise Busy(0.0, self.retry_after_s())
            self.waiting += 1
        try:
            acquired = self._free.acquire(timeout=None if math.isinf(wait_s) else wait_s)
        finally:
            with self._lock:
                self.waiting -= 1
        if not acquired:
            raise Busy(time.perf_counter() - started, self.retry_after_s())
        with self._lock:
            self.running += 1
        began = time.perf_counter()
        try:
            yield
        finally:
            with self._lock:
                self.running -= 1
                self._mean_s = 0.8 * self._mean_s + 0.2 * (time.perf_counter() - began)
            self._free.release()

    def full(self) -> bool:
        return self.running + self.waiting >= self.limit

    def queue_full(self) -> bool:
        """No room to wait: every slot taken and `max_waiting` callers already waiting."""
        return self.full() and self.waiting >= self.max_waiting

    def admit(self, wait_s: float) -> int | None:
        """Before waiting: None when a slot is free, else the estimated wait in seconds; `Busy` at once when that
        is longer than `wait_s` or the waiting line is full (holding on only to fail helps nobody)."""
        if not self.full():
            return None
        estimate = self.retry_after_s()
        if estimate > wait_s or self.queue_full():
            raise Busy(0.0, estimate)
        return estimate

    def retry_after_s(self) -> int:
        """Seconds until the queue ahead has probably drained."""
        return max(1, math.ceil(self._mean_s * (self.waiting + self.running) / self.limit))


class LazyChat:
    """Starts the chat model on first use only (a cached briefing never starts it)."""

    def __init__(self, factory):
        self._factory, self._chat = factory, None
        self._lock = threading.Lock()

    def _model(self):
        # Once, under a lock: threads that raced here each started (or joined) a server of their own, and the
        # one whose chat lost the race stopped the embedded server under the others (measured: concurrent
        # briefing translations lost their connection after about a minute).
        with self._lock:
            if self._chat is None:
                self._chat = self._factory()
            return self._chat

    def stream(self, messages, max_tokens=None):
        return self._model().stream(messages, max_tokens=max_tokens)

    @property
    def usage_totals(self) -> dict:
        return getattr(self._chat, "usage_totals", {}) if self._chat is not None else {}

    def __getattr__(self, name):  # next_token_logprobs, base_url, name … of the real model
        return getattr(self._model(), name)


class Service:
    """What every face needs, built once on first use. Thread-safe: faces call it from many threads."""

    def __init__(self, settings: Settings | None = None, embedder=None, llm=None):
        self.settings = settings or Settings()
        self._embedder, self._llm = embedder, llm
        self._store = self._retriever = self._generation = None
        self._runner = None
        self._lock = threading.RLock()
        self.slots = GenerationSlots(self.settings.ui_llm_concurrency, self.settings.llm_queue_wait_s,
                                     self.settings.llm_queue_max)

    # ---- collaborators -------------------------------------------------------------------------------------
    def embedder(self):
        with self._lock:
            if self._embedder is None:
                from rag.embed import make_embedder

                self._embedder = make_embedder(self.settings)
            return self._embedder

    def llm(self):
        with self._lock:
            if self._llm is None:
                from rag.llm import make_chat_model

                settings = self.settings
                self._llm = LazyChat(lambda: make_chat_model(settings))
            return self._llm

    def _embedder_name(self) -> str:
        """The embedder's recorded name, without loading the model (listing and briefing need no vectors)."""
        if self._embedder is not None:
            return self._embedder.name
        from rag import embed

        return embed.embedder_name(self.settings)

    def _current_generation(self) -> str | None:
        from rag.store import current_generation

        return current_generation(self.settings)

    def store(self):
        """The index as last committed: reopened when another writer (CLI, upload) made a new generation."""
        from rag.store import open_store

        with self._lock:
            generation = self._current_generation()
            if self._store is None or generation != self._generation:
                self._store = open_store(self.settings, self._embedder_name())
                self._generation, self._retriever = generation, None
            return self._store

    def retriever(self):
        from rag.retrieve import HybridRetriever

        with self._lock:
            store = self.store()
            if self._retriever is None:
                self._retriever = HybridRetriever.from_settings(store, self.embedder(), self.settings)
            return self._retriever

    def chain(self):
        from rag.answer import AnswerChain

        return AnswerChain.from_settings(self.retriever(), self.llm(), self.settings)

    # ---- ask -------------------------------------------------------------------------------------------------
    def check_question(self, question: str) -> str:
        from rag.retrieve import check_question

        return check_question(question, self.settings.max_question_chars)

    def stream(self, question: str, history: list[tuple[str, str]] | None = None, k: int | None = None,
               wait_s: float | None = None) -> Iterator[dict]:
        """The answer chain's events (evidence, tokens, then the answer), holding a generation slot from just
        before the model is needed to the end; first a `queued` event (position, estimated wait) when every slot is
        taken. A refusal that needs no model (nothing in the articles) takes no slot and never waits. A bad
        question fails before queueing; `Busy` comes before the first event when the estimated wait is longer
        than the caller waits, or the waiting line is full."""
        question = self.check_question(question)
        wait_s = self.slots.wait_s if wait_s is None else wait_s
        with ExitStack() as slot:

            def gate() -> Generator[dict, None, float]:
                estimate = self.slots.admit(wait_s)
                if estimate is not None:
                    yield {"type": "queued", "position": self.slots.waiting + 1, "estimate_s": estimate}
                queued = time.perf_counter()
                slot.enter_context(self.slots.hold(wait_s))
                return time.perf_counter() - queued

            yield from self.chain().stream(question, history=history, k=k, gate=gate)

    def ask(self, question: str, history: list[tuple[str, str]] | None = None, k: int | None = None,
            wait_s: float | None = None) -> Answer:
        answer = None
        for event in self.stream(question, history, k, wait_s):
            if event["type"] == "answer":
                answer = event["answer"]
        return answer

    def retrieve(self, question: str, k: int | None = None, source: str | None = None, since: str | None = None,
                 until: str | None = None) -> Retrieval:
        """Passages only: no generation slot, so a search is never stuck behind an answer being written."""
        from rag.arabic import detect_language
        from rag.store import Filters

        question = self.check_question(question)
        hits = self.retriever().retrieve(question, k=k, filters=Filters(source=source, since=since, until=until))
        return Retrieval(question=question, lang=detect_language(question), hits=hits)

    # ---- brief -----------------------------------------------------------------------------------------------
    def briefing(self, date: str | None = None, since: str | None = None, until: str | None = None,
                 all_articles: bool = False, lang: str = "ar", use_cache: bool = True, progress=None,
                 wait_s: float | None = None, article_ids: list[str] | None = None) -> Briefing:
        from rag.brief import Briefer

        chosen = [bool(date), bool(since or until), bool(all_articles), bool(article_ids)]
        if sum(chosen) > 1:
            raise BadInput("give one of: a date, a range (since/until), all articles, or article ids")
        briefer = Briefer.from_settings(self.store(), self.llm(), self.settings, progress)
        with self.slots.hold(wait_s):
            return briefer.brief(date or None, since or None, until or None, all_articles, lang, use_cache,
                                 article_ids or None)

    def brief_runner(self):
        """The one `BriefRunner` of this service: scheduled runs and "Run now" share its one run slot."""
        with self._lock:
            if self._runner is None:
                from rag.schedule import BriefRunner

                self._runner = BriefRunner.from_settings(self, self.settings)
            return self._runner

    # ---- library ---------------------------------------------------------------------------------------------
    def articles(self) -> list[ArticleInfo]:
        store = self.store()
        return [ArticleInfo(id=a.id, title=a.title, source=a.source, date=a.date, url=a.url,
                            chunks=len(store.chunks_of(a.id)))
                for a in sorted(store.articles(), key=lambda a: (a.date or "", a.id))]

    def article(self, article_id: str) -> Article:
        found = self.store().article(article_id)
        if found is None:
            raise NotFound(f"no article {article_id!r} in the index (list them with GET /api/articles or "
                           "`rag stats --articles`)")
        return found

    def ingest(self, paths: list[str | Path], progress: bool = False,
               names: list[str] | None = None) -> IngestReport:
        """Uploaded files are copied under safe names (the article ids) into a private folder, then ingested
        incrementally under the index's write lock. `names`: the names the user gave, when `paths` are
        temporary files. Reports never show the server's paths."""
        if not paths:
            raise BadInput("no files given: upload .txt, .md, .html, .json or .jsonl files")
        names = names or [Path(str(p)).name for p in paths]
        limit = self.settings.ui_max_upload_mb * 1024 * 1024
        skipped: list[SkippedInput] = []
        with tempfile.TemporaryDirectory(prefix="rag-upload-") as tmp:
            staged = []
            for i, (path, name) in enumerate(zip(paths, names, strict=True)):
                suffix = Path(name).suffix.lower()
                if suffix not in UPLOAD_TYPES:
                    skipped.append(SkippedInput(origin=name, reason=f"not one of {', '.join(UPLOAD_TYPES)}"))
                    continue
                if Path(path).stat().st_size > limit:
                    skipped.append(SkippedInput(origin=name, reason=f"larger than {self.settings.ui_max_upload_mb} MB "
                                                                    "(RAG_UI_MAX_UPLOAD_MB)"))
                    continue
                target = Path(tmp) / f"{safe_name(name)}{suffix}"
                if target.exists():
                    target = Path(tmp) / f"{safe_name(name)}_{i}{suffix}"
                shutil.copyfile(path, target)
                staged.append(target)
            report = self._ingest_staged(staged) if staged else IngestReport()
        report = _without_server_paths(report, f"{tmp}/", "")
        report.skipped = skipped + report.skipped
        return report

    def ingest_records(self, records: list[dict]) -> IngestReport:
        """Articles given as JSON records ({id?, title?, text, date?, source?, url?}), ingested as a .jsonl file."""
        if not records:
            raise BadInput("no articles given: send a list of {\"title\", \"text\", \"date\", \"source\"} records")
        with tempfile.TemporaryDirectory(prefix="rag-records-") as tmp:
            path = Path(tmp) / "records.jsonl"
            path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
            report = self._ingest_staged([path])
        return _without_server_paths(report, str(path), "record")  # "record:3"

    def _ingest_staged(self, paths: list[Path]) -> IngestReport:
        from rag.ingest import Ingestor
        from rag.store import open_store, write_lock

        with write_lock(self.settings.index_dir, self.settings.ingest_wait_for_lock):
            store = open_store(self.settings, self.embedder().name, create=True)
            return Ingestor.from_settings(store, self.embedder(), self.settings).ingest(paths)

    def remove(self, article_id: str) -> None:
        from rag.store import open_store, write_lock

        article_id = (article_id or "").strip()
        if not article_id:
            raise BadInput("give the id of the article to remove (see the library)")
        with write_lock(self.settings.index_dir, self.settings.ingest_wait_for_lock):
            store = open_store(self.settings, self._embedder_name())
            if not store.remove_article(article_id):
                raise NotFound(f"no article {article_id!r} in the index")
            store.save()

    # ---- status ----------------------------------------------------------------------------------------------
    def index_stats(self) -> dict | None:
        """Counts of the committed index, or None when there is none (or it cannot be read)."""
        try:
            store = self.store()
        except RagError:
            return None
        stats = store.stats()
        return {k: stats[k] for k in ("articles", "chunks", "sentences", "generation", "date_from", "date_to")}

    def health(self) -> dict:
        index_error = ""
        try:
            store = self.store()
            stats, index_error = store.stats(), store.fallback  # a damaged generation passed over is worth saying
        except RagError as exc:
            stats, index_error = None, str(exc)
        llm = self._llm_status()
        ok = stats is not None and llm["reachable"] is not False
        return {"status": "ok" if ok else "degraded",
                "index": {"loaded": stats is not None, "articles": stats["articles"] if stats else 0,
                          "chunks": stats["chunks"] if stats else 0,
                          "generation": stats["generation"] if stats else None, "error": index_error},
                "embedder": self._embedder_name(), "llm": llm,
                "generations": {"running": self.slots.running, "waiting": self.slots.waiting,
                                "limit": self.slots.limit}}

    def _llm_status(self) -> dict:
        """Whether the LLM endpoint answers, without starting the embedded model (it starts on first use)."""
        if self.settings.llm_base_url:
            url = self.settings.llm_base_url
        else:
            model = self._llm._chat if isinstance(self._llm, LazyChat) else self._llm
            if model is None:
                return {"endpoint": "embedded", "reachable": None, "detail": "starts with the first question"}
            url = getattr(model, "base_url", None)
            if url is None:  # a model object in this process (tests' fakes)
                return {"endpoint": getattr(model, "name", "in-process"), "reachable": True, "detail": "in process"}
        import httpx

        try:
            response = httpx.get(str(url).rstrip("/") + "/models", timeout=2.0,
                                 headers={"Authorization": f"Bearer {self.settings.llm_api_key or 'not-needed'}"})
            reachable = response.status_code < 500
            detail = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            reachable, detail = False, f"{type(exc).__name__}: check RAG_LLM_BASE_URL and that the server runs"
        return {"endpoint": str(url), "reachable": reachable, "detail": detail}
