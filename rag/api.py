"""The HTTP face: a JSON API under /api, an OpenAI-compatible chat endpoint under /v1, Prometheus metrics, and
the web app mounted at / — one process, one port (`rag serve`, `make run`).

Every route calls `rag.service.Service`, so a question gets the same `Answer` record here as in the CLI and the
app. Errors are JSON `{"error": {"code", "message", "type"}}` (the OpenAI shape), never a traceback.
"""

from __future__ import annotations

import functools
import hmac
import json
import logging
import os
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Generator, Iterator
from contextlib import asynccontextmanager
from datetime import date as Date
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
import anyio.to_thread
from fastapi import Depends, FastAPI, Query, Request, Security
from fastapi import Path as Path_
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException

from rag import errors
from rag.records import Answer, Article, ArticleInfo, Briefing, BriefRun, IngestReport, Retrieval
from rag.retrieve import MAX_QUESTION_CHARS
from rag.service import Service
from rag.settings import Settings

log = logging.getLogger("rag.api")
MODEL_ID = "news-rag"  # the one model /v1/models lists
SOURCES_HEADING = {"ar": "**المصادر**", "en": "**Sources**"}


# ---- request and response bodies --------------------------------------------------------------------------------
class ErrorBody(BaseModel):
    code: str = Field(description="machine-readable: unauthorized, invalid_request, question_too_long, busy, …")
    message: str = Field(description="what went wrong and what to do")
    type: str = Field(description="the same family as `code`, for OpenAI clients")


class ErrorResponse(BaseModel):
    error: ErrorBody


class Turn(BaseModel):
    question: str
    answer: str


class AskRequest(BaseModel):
    question: str = Field(max_length=MAX_QUESTION_CHARS, description="Arabic or English; answered in its language",
                          examples=["كم ساعة أمهلت عصائب أهل الحق الحكومة؟"])
    history: list[Turn] = Field(default_factory=list, max_length=20,
                                description="earlier turns, oldest first: a follow-up is rewritten with them")
    k: int | None = Field(None, ge=1, le=10, description="retrieved passages the answer may use")
    stream: bool = Field(False, description="server-sent events: `queued` (position, estimate_s) when waiting, "
                                            "`evidence`, `token`…, then one `answer` (or one `error`)")


class RetrieveRequest(BaseModel):
    question: str = Field(max_length=MAX_QUESTION_CHARS, examples=["US strike on the Iraqi border"])
    k: int | None = Field(None, ge=1, le=100, description="passages to return (default RAG_TOP_K)")
    source: str | None = Field(None, max_length=200, description="only outlets whose name contains this")
    since: Date | None = Field(None, description="only articles dated on or after this day")
    until: Date | None = Field(None, description="only articles dated on or before this day")


class BriefRequest(BaseModel):
    date: Date | None = Field(None, description="one day (default: the latest day with articles)")
    since: Date | None = Field(None, description="a range's first day")
    until: Date | None = Field(None, description="a range's last day")
    all: bool = Field(False, description="every article, undated ones included")
    articles: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=100, description="summarise exactly these articles (ids)")
    lang: Literal["ar", "en"] = "ar"
    format: Literal["json", "md", "html"] = Field("json", description="json: the Briefing record")
    # One of date, since/until, all or articles: the service checks it for every face (422 bad_input).


class BriefRuns(BaseModel):
    runs: list[BriefRun]
    schedule: str = Field("", description="RAG_BRIEF_SCHEDULE (cron, UTC); empty when runs are manual only")
    next_run: str = Field("", description="when the schedule fires next, ISO 8601 UTC")


class ArticlePage(BaseModel):
    total: int
    offset: int
    limit: int
    articles: list[ArticleInfo]


class ArticleRecord(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str | None = Field(None, max_length=200, description="default: derived from the text")
    title: str = ""
    text: str = Field(min_length=1)
    date: str = Field("", description="YYYY-MM-DD")
    source: str = ""
    url: str = ""


class ArticleRecords(BaseModel):
    articles: list[ArticleRecord] = Field(min_length=1, max_length=10_000)


class Removed(BaseModel):
    removed: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):  # [{"type": "text", "text": …}, …]
            return " ".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")
        return self.content or ""


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # temperature, top_p, … are accepted and ignored
    model: str = MODEL_ID
    messages: list[ChatMessage] = Field(min_length=1, max_length=200)
    stream: bool = False


# ---- errors ---------------------------------------------------------------------------------------------------
_STATUS = [  # most specific first
    (errors.QuestionTooLong, 413, "question_too_long"),
    (errors.BadInput, 422, "bad_input"),
    (errors.NotFound, 404, "not_found"),
    (errors.Conflict, 409, "conflict"),
    (errors.Busy, 503, "busy"),
    (errors.IndexNotFound, 503, "index_missing"),
    (errors.IndexBusy, 503, "index_busy"),
    (errors.IndexWriteFailed, 507, "index_write_failed"),
    (errors.IndexMismatch, 503, "index_unusable"),
    (errors.IndexCorrupt, 503, "index_unusable"),
    (errors.LLMUnavailable, 502, "llm_unavailable"),
    (errors.RagError, 503, "unavailable"),
]
_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
               413: "too_large", 415: "unsupported_media_type", 422: "invalid_request", 429: "rate_limited"}


def error_response(status: int, code: str, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, "type": code}}, status, headers=headers)


# A client that comes back when Retry-After tells it to reuses its idle keep-alive connection. If the server closes
# idle connections at that same moment, the request meets a reset and never gets a response (measured: a client
# idle 5.0 s against uvicorn's default 5 s keep-alive). So idle connections outlive every Retry-After we send.
KEEP_ALIVE_S = 75
MAX_RETRY_AFTER_S = 60
UVICORN_OPTIONS = {"log_level": "warning", "timeout_keep_alive": KEEP_ALIVE_S}


def rag_error_response(exc: errors.RagError) -> JSONResponse:
    status, code = next((s, c) for kind, s, c in _STATUS if isinstance(exc, kind))
    headers = ({"Retry-After": str(min(exc.retry_after_s, MAX_RETRY_AFTER_S))} if isinstance(exc, errors.Busy)
               else None)
    return error_response(status, code, str(exc), headers)


def _field_errors(exc: RequestValidationError) -> str:
    parts = []
    for e in exc.errors()[:5]:
        where = ".".join(str(x) for x in e.get("loc", ()) if x != "body") or "body"
        parts.append(f"{where}: {e.get('msg', 'invalid')}")
    return "; ".join(parts)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(errors.RagError)
    async def _rag(request: Request, exc: errors.RagError):
        return rag_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        return error_response(422, "invalid_request", _field_errors(exc))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException):
        return error_response(exc.status_code, _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}"),
                              str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, "internal", "unexpected server error: see the server's log")


# ---- access ---------------------------------------------------------------------------------------------------
def parse_api_keys(value: str) -> list[str]:
    """RAG_API_KEYS: keys separated by commas, or the path of a file with one per line (# comments allowed)."""
    value = (value or "").strip()
    if not value:
        return []
    path = Path(value)
    lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else value.split(",")
    return [k.strip() for k in lines if k.strip() and not k.strip().startswith("#")]


def _key_checker(keys: list[str]):
    bearer = HTTPBearer(auto_error=False, description="an API key from RAG_API_KEYS (only when it is set)")

    # A default, not Annotated[…]: the annotations are strings here and `bearer` is local.
    def require_key(credentials: HTTPAuthorizationCredentials | None = Security(bearer)) -> None:  # noqa: B008
        if not keys:
            return
        token = credentials.credentials if credentials else ""
        if not any(hmac.compare_digest(token.encode(), k.encode()) for k in keys):
            raise HTTPException(401, "missing or invalid API key: send `Authorization: Bearer KEY` with a key from "
                                     "RAG_API_KEYS", headers={"WWW-Authenticate": "Bearer"})

    return require_key


# ---- metrics --------------------------------------------------------------------------------------------------
class Metrics:
    """Prometheus metrics in a registry of this app's own (no process-wide globals: tests build many apps)."""

    def __init__(self, service: Service):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = registry = CollectorRegistry()
        self.requests = Counter("rag_http_requests", "HTTP requests by route, method and status",
                                ["route", "method", "status"], registry=registry)
        self.latency = Histogram("rag_http_request_duration_seconds", "time to the end of the response, by route",
                                 ["route"], registry=registry,
                                 buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120))
        Gauge("rag_generations_running", "answers and briefings being generated", registry=registry
              ).set_function(lambda: service.slots.running)
        Gauge("rag_generations_queued", "requests waiting for a generation slot", registry=registry
              ).set_function(lambda: service.slots.waiting)
        self.articles = Gauge("rag_index_articles", "articles in the committed index", registry=registry)
        self.chunks = Gauge("rag_index_chunks", "passages in the committed index", registry=registry)
        self.service = service

    def exposition(self) -> bytes:
        from prometheus_client import generate_latest

        stats = self.service.index_stats() or {"articles": 0, "chunks": 0}
        self.articles.set(stats["articles"])
        self.chunks.set(stats["chunks"])
        return generate_latest(self.registry)


_OWN_PREFIXES = ("/api/", "/v1/", "/metrics", "/docs", "/openapi.json")


class MetricsMiddleware:
    """Counts every response by its route template (not its path: ids would explode the label set)."""

    def __init__(self, app, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        status, started = 500, time.perf_counter()

        async def observe(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            route = scope.get("route")  # the innermost match: a route of the mounted app is labelled "app"
            path = getattr(route, "path", "")
            label = path if path.startswith(_OWN_PREFIXES) else "app" if route is not None else "unmatched"
            self.metrics.requests.labels(label, scope["method"], str(status)).inc()
            self.metrics.latency.labels(label).observe(time.perf_counter() - started)


# ---- streaming helpers ----------------------------------------------------------------------------------------
_END = object()


def _next(events: Iterator):
    return next(events, _END)


def answer_threads(settings: Settings) -> anyio.CapacityLimiter:
    """Threads for answers, apart from the pool that serves searches, reads and health: an answer waiting for a
    generation slot holds its thread, and with the shared pool (40 threads) waiting answers once took every
    thread, so searches and /api/health waited seconds behind them. Room for every answer that may wait
    (RAG_LLM_QUEUE_MAX), those generating, and streams finishing."""
    return anyio.CapacityLimiter(settings.llm_queue_max + settings.ui_llm_concurrency + 4)


async def in_thread(limiter: anyio.CapacityLimiter, func, *args):
    return await anyio.to_thread.run_sync(functools.partial(func, *args), limiter=limiter)


async def start_stream(events: Generator, limiter: anyio.CapacityLimiter) -> Generator:
    """Runs a stream up to its first event before the response starts, so a full queue or a bad question is a
    proper status code (503, 413, 422) rather than an error in the middle of a 200 stream. What it returns is a
    generator too: closing it (a client gone) closes the stream, and with it the generation slot it holds."""
    first = await in_thread(limiter, _next, events)

    def resumed():
        try:
            if first is not _END:
                yield first
            yield from events
        finally:  # closed at its first event, it must close the stream itself: `yield from` has not begun
            events.close()

    return resumed()


async def iterate_in(limiter: anyio.CapacityLimiter, lines: Iterator[str]):
    """A response body from a blocking generator, each step on the answers' threads (Starlette would use the
    shared pool). Closed when the response ends or the client goes, which releases the generation slot."""
    try:
        while (line := await in_thread(limiter, _next, lines)) is not _END:
            yield line
    finally:
        lines.close()


def sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _error_data(exc: errors.RagError) -> dict:
    return json.loads(rag_error_response(exc).body)


def answer_events(events: Generator) -> Iterator[str]:
    """The answer chain's events as server-sent events; a failure mid-way is an `error` event, never a
    truncated answer."""
    try:
        for event in events:
            if event["type"] == "queued":
                yield sse("queued", {"position": event["position"], "estimate_s": event["estimate_s"]})
            elif event["type"] == "evidence":
                yield sse("evidence", {"evidence": [c.model_dump() for c in event["evidence"]]})
            elif event["type"] == "token":
                yield sse("token", {"text": event["text"]})
            else:
                yield sse("answer", event["answer"].model_dump())
    except errors.RagError as exc:
        yield sse("error", _error_data(exc))
    except Exception:  # noqa: BLE001 - the stream has started: report, do not leak a traceback
        log.exception("answer stream failed")
        yield sse("error", {"error": {"code": "internal", "message": "unexpected server error: see the server's "
                                                                     "log", "type": "internal"}})
    finally:
        events.close()


# ---- the OpenAI-compatible face -------------------------------------------------------------------------------
_SOURCES_BLOCK = re.compile(r"\n+\*\*(?:Sources|المصادر)\*\*\n.*\Z", re.S)


def chat_history(messages: list[ChatMessage]) -> tuple[str, list[tuple[str, str]]]:
    """The last user message is the question; earlier user/assistant pairs are the history (our own source lists,
    echoed back by chat clients, removed)."""
    users = [i for i, m in enumerate(messages) if m.role == "user"]
    if not users or not messages[users[-1]].text().strip():
        raise errors.BadInput("messages: give at least one user message with text (the question)")
    last = users[-1]
    history, pending = [], None
    for m in messages[:last]:
        if m.role == "user":
            pending = m.text()
        elif m.role == "assistant" and pending is not None:
            history.append((pending, _SOURCES_BLOCK.sub("", m.text()).strip()))
            pending = None
    return messages[last].text(), history[-20:]


def sources_markdown(answer: Answer) -> str:
    """A numbered source list chat clients render under the answer: title, outlet, date, article id."""
    if not answer.citations:
        return ""
    lines = []
    for c in answer.citations:
        meta = ", ".join(x for x in (c.source, c.date) if x)
        title = c.title if c.title and c.title != c.article_id else ""
        lines.append(f"[{c.n}] {title or c.article_id}" + (f" — {meta}" if meta else "")
                     + (f" (`{c.article_id}`)" if title else ""))
    return "\n\n" + SOURCES_HEADING.get(answer.lang, SOURCES_HEADING["en"]) + "\n" + "\n".join(
        f"- {line}" for line in lines)


def chat_content(answer: Answer) -> str:
    return answer.answer + sources_markdown(answer)


def _citations(answer: Answer) -> list[dict]:
    return [c.model_dump(include={"n", "article_id", "chunk_id", "title", "source", "date", "text"})
            for c in answer.citations]


def chat_completion(answer: Answer) -> dict:
    return {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion", "created": int(time.time()),
            "model": MODEL_ID,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": chat_content(answer)}}],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            "citations": _citations(answer), "answer": answer.model_dump()}


def chat_chunks(events: Generator) -> Iterator[str]:
    """OpenAI chunk format. Only verified text is sent: a chat client cannot take back a streamed token, and the
    verifier may turn the model's words into a quote or a refusal, so the content arrives when it is checked."""
    ident, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())

    def chunk(delta: dict, finish: str | None = None, **extra) -> str:
        body = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": MODEL_ID,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    try:
        answer = next(e["answer"] for e in events if e["type"] == "answer")
        for piece in re.findall(r"\S+\s*|\s+", chat_content(answer)):
            yield chunk({"content": piece})
        yield chunk({}, "stop", citations=_citations(answer), answer=answer.model_dump())
    except errors.RagError as exc:
        yield f"data: {json.dumps(_error_data(exc), ensure_ascii=False)}\n\n"
    finally:
        events.close()
    yield "data: [DONE]\n\n"


# ---- the application ------------------------------------------------------------------------------------------
_ERRORS = {code: {"model": ErrorResponse} for code in (401, 404, 413, 422, 502, 503)}
_STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # no proxy buffering of events


def create_app(settings: Settings | None = None, service: Service | None = None, ui: bool = True) -> FastAPI:
    """The API (and, with `ui`, the web app at /) over one Service."""
    service = service or Service(settings)
    settings = service.settings
    keys = parse_api_keys(settings.api_keys)
    guarded = [Depends(_key_checker(keys))]
    metrics = Metrics(service)
    answers = answer_threads(settings)
    app = FastAPI(title="Arabic/English news QA", version="1", responses=_ERRORS, lifespan=_schedule(service),
                  description="Cited answers, passages and briefings over Arabic news, in Arabic or English. "
                              "Send `Authorization: Bearer KEY` when the server sets RAG_API_KEYS.")
    app.state.service = service
    _install_error_handlers(app)
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    # -- answers --
    @app.post("/api/ask", response_model=Answer, tags=["ask"], dependencies=guarded,
              responses={200: {"content": {"text/event-stream": {}},
                               "description": "the Answer record, or with stream=true server-sent events"}})
    async def ask(body: AskRequest):
        """A cited answer in the question's language; `refused` when the articles do not say, `quoted` when it
        quotes the article's sentence instead of asserting an unverified rewording."""
        history = [(t.question, t.answer) for t in body.history] or None
        if body.stream:
            events = await start_stream(service.stream(body.question, history, body.k), answers)
            return StreamingResponse(iterate_in(answers, answer_events(events)), media_type="text/event-stream",
                                     headers=_STREAM_HEADERS)
        return await in_thread(answers, service.ask, body.question, history, body.k)

    @app.post("/api/retrieve", response_model=Retrieval, tags=["ask"], dependencies=guarded)
    def retrieve(body: RetrieveRequest):
        """Passages, best first (no generation: never queued behind an answer)."""
        return service.retrieve(body.question, body.k, body.source, _iso(body.since), _iso(body.until))

    @app.post("/api/brief", response_model=Briefing, tags=["brief"], dependencies=guarded,
              responses={200: {"content": {"text/markdown": {}, "text/html": {}}}})
    def brief(body: BriefRequest):
        """A briefing story by story, every sentence cited: json (the Briefing record), md or html."""
        from rag.brief import render

        briefing = service.briefing(_iso(body.date), _iso(body.since), _iso(body.until), body.all, body.lang,
                                    article_ids=body.articles)
        if body.format == "json":
            return briefing
        media = "text/markdown" if body.format == "md" else "text/html"
        return Response(render(briefing, body.format), media_type=f"{media}; charset=utf-8")

    # -- scheduled briefings and their history --
    @app.get("/api/briefs", response_model=BriefRuns, tags=["brief"], dependencies=guarded)
    def brief_runs(limit: int = Query(50, ge=1, le=500)):
        """Past briefing runs, newest first (a run in progress has status `running`), and the next scheduled run."""
        scheduler = getattr(app.state, "scheduler", None)
        upcoming = scheduler.next_run() if scheduler is not None else None
        return BriefRuns(runs=service.brief_runner().history.runs(limit), schedule=settings.brief_schedule,
                         next_run=upcoming.isoformat(timespec="seconds") if upcoming else "")

    @app.post("/api/briefs/run", response_model=BriefRun, status_code=202, tags=["brief"], dependencies=guarded,
              responses={409: {"model": ErrorBody, "description": "a run is already in progress"}})
    def brief_run_now():
        """Starts a run now (the latest day, every configured language and format); poll GET /api/briefs/{id}."""
        return service.brief_runner().run_in_background("manual")  # Conflict (409) while a run is in progress

    @app.get("/api/briefs/{run_id}", response_model=BriefRun, tags=["brief"], dependencies=guarded)
    def brief_run(run_id: str = Path_(max_length=40)):
        return service.brief_runner().history.get(run_id)

    @app.get("/api/briefs/{run_id}/files/{name}", tags=["brief"], dependencies=guarded,
             responses={200: {"content": {"text/markdown": {}, "text/html": {}, "application/json": {}}}})
    def brief_file(run_id: str = Path_(max_length=40), name: str = Path_(max_length=60)):
        """One of the run's files (briefing-ar.md, briefing-en.html, …)."""
        path = service.brief_runner().history.file(run_id, name)
        media = {"md": "text/markdown", "html": "text/html", "json": "application/json"}[path.suffix[1:]]
        return FileResponse(path, media_type=f"{media}; charset=utf-8", filename=name)

    # -- library --
    @app.get("/api/articles", response_model=ArticlePage, tags=["library"], dependencies=guarded)
    def list_articles(offset: Annotated[int, Query(ge=0)] = 0, limit: Annotated[int, Query(ge=1, le=1000)] = 100):
        """The library, oldest first, a page at a time."""
        articles = service.articles()
        return ArticlePage(total=len(articles), offset=offset, limit=limit, articles=articles[offset:offset + limit])

    @app.get("/api/articles/{article_id}", response_model=Article, tags=["library"], dependencies=guarded)
    def get_article(article_id: str):
        return service.article(article_id)

    @app.post("/api/articles", response_model=IngestReport, tags=["library"], dependencies=guarded,
              openapi_extra={"requestBody": {"required": True, "content": {
                  "multipart/form-data": {"schema": {"type": "object", "properties": {"files": {
                      "type": "array", "items": {"type": "string", "format": "binary"}}}}},
                  "application/json": {"schema": ArticleRecords.model_json_schema()}}}})
    async def add_articles(request: Request):
        """Upload files (multipart field `files`: .txt .md .html .json .jsonl) or send JSON
        `{"articles": [{"title", "text", "date", "source", "url", "id"?}]}`. Added or updated incrementally;
        what could not be used is listed in `skipped` with the reason."""
        limit = settings.ui_max_upload_mb * 1024 * 1024
        if int(request.headers.get("content-length") or 0) > limit * 20:
            raise HTTPException(413, f"the request is over {settings.ui_max_upload_mb * 20} MB: send fewer files "
                                     "at a time")
        kind = request.headers.get("content-type", "")
        if kind.startswith("multipart/form-data"):
            return await _upload(request, service, limit)
        if kind.startswith("application/json"):
            try:
                records = ArticleRecords.model_validate_json(await request.body())
            except ValidationError as exc:  # bad JSON included
                raise RequestValidationError(exc.errors()) from exc
            return await run_in_threadpool(service.ingest_records, [r.model_dump(exclude_none=True)
                                                                    for r in records.articles])
        raise HTTPException(415, "send multipart/form-data with `files`, or application/json with `articles`")

    @app.delete("/api/articles/{article_id}", response_model=Removed, tags=["library"], dependencies=guarded)
    def delete_article(article_id: str):
        service.remove(article_id)
        return Removed(removed=article_id)

    # -- operations --
    @app.get("/api/health", tags=["operations"])
    def health() -> dict:
        """Open without a key: index loaded and its size, the embedder, whether the LLM endpoint answers."""
        return service.health()

    @app.get("/metrics", tags=["operations"], dependencies=guarded, response_class=PlainTextResponse)
    def prometheus():
        """Prometheus text format: requests by route and status, latency, generations running and queued,
        index size."""
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    # -- OpenAI-compatible --
    @app.get("/v1/models", tags=["openai"], dependencies=guarded)
    def models() -> dict:
        return {"object": "list", "data": [{"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "rag"}]}

    @app.post("/v1/chat/completions", tags=["openai"], dependencies=guarded)
    async def chat_completions(body: ChatRequest):
        """The last user message is the question, earlier turns its history. The answer comes back as the
        assistant message with a Markdown source list; `citations` and `answer` carry the structured record."""
        question, history = chat_history(body.messages)
        if body.stream:
            events = await start_stream(service.stream(question, history or None), answers)
            return StreamingResponse(iterate_in(answers, chat_chunks(events)), media_type="text/event-stream",
                                     headers=_STREAM_HEADERS)
        return chat_completion(await in_thread(answers, service.ask, question, history or None))

    if ui:
        _mount_ui(app, service)
    return app


def _iso(day: Date | None) -> str | None:
    return day.isoformat() if day else None


async def _upload(request: Request, service: Service, limit: int) -> IngestReport:
    from starlette.datastructures import UploadFile

    form = await request.form(max_files=200)
    files = [f for f in form.getlist("files") if isinstance(f, UploadFile)]
    if not files:
        raise errors.BadInput("no files: send them in the multipart field `files`")
    with tempfile.TemporaryDirectory(prefix="rag-api-upload-") as tmp:
        paths, names = [], []
        for i, upload in enumerate(files):
            path = Path(tmp) / f"{i}"
            with open(path, "wb") as out:
                while block := await upload.read(1 << 20):
                    out.write(block)
            paths.append(path)
            names.append(Path(upload.filename or f"upload{i}.txt").name)
        return await run_in_threadpool(service.ingest, paths, False, names)


def _schedule(service: Service):
    """Scheduled briefings run while the server runs (RAG_BRIEF_SCHEDULE); the schedule is checked at start."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        scheduler = None
        if service.settings.brief_schedule:
            from rag.schedule import BriefScheduler, cron_trigger

            scheduler = BriefScheduler(service.brief_runner(), cron_trigger(service.settings.brief_schedule))
            scheduler.start()
        app.state.scheduler = scheduler
        try:
            yield
        finally:
            if scheduler is not None:
                scheduler.shutdown()

    return lifespan


def _mount_ui(app: FastAPI, service: Service) -> None:
    import gradio as gr

    from rag.ui import CSS, HEAD, build_app, parse_auth

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no network here, and no phoning home
    blocks = build_app(service=service).queue(default_concurrency_limit=4)  # LLM events have their own limit
    settings = service.settings
    gr.mount_gradio_app(app, blocks, path="", auth=parse_auth(settings.auth), css=CSS, head=HEAD,
                        theme=gr.themes.Soft(), max_file_size=f"{settings.ui_max_upload_mb}mb", footer_links=["api"],
                        allowed_paths=[str(Path(settings.briefs_dir).resolve())])  # past briefings' downloads


# ---- serving --------------------------------------------------------------------------------------------------
class RunningServer:
    """uvicorn in a background thread (tests, and anything that needs the server inside its own process)."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 7860):
        import uvicorn

        self.url = f"http://{host}:{port}"
        self._server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, **UVICORN_OPTIONS))
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self, wait_s: float = 30.0) -> RunningServer:
        self._thread.start()
        deadline = time.monotonic() + wait_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise errors.RagError(f"the server did not start on {self.url}: is the port taken?")
            time.sleep(0.02)
        return self

    def close(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def serve(host: str = "127.0.0.1", port: int = 7860, settings: Settings | None = None) -> None:
    import uvicorn

    settings = settings or Settings()
    print(f"serving the app at http://{host}:{port}/ , the API at /api and /v1 (docs: /docs)", flush=True)
    uvicorn.run(create_app(settings), host=host, port=port, **UVICORN_OPTIONS)
