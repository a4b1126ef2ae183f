"""All generation goes through the `openai` client against an OpenAI-compatible chat endpoint.

With no endpoint configured, the embedded model (Qwen2.5-Coder-1.5B-Instruct, assembled at set-up) is served
on 127.0.0.1 by llama.cpp (the `xllamacpp` binding) inside this process. A second process that needs the
model finds the first one's server through a lock file and talks to it, so two models never share the CPU.
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from rag.errors import LLMUnavailable
from rag.settings import Settings

EMBEDDED_MODEL_NAME = "qwen2.5-coder-1.5b-instruct-q4_k_m"


class ChatModel(Protocol):
    name: str

    def stream(self, messages: list[dict], max_tokens: int | None = None) -> Iterator[str]: ...


def choose_option(chat, messages: list[dict], options: list[str]) -> tuple[str | None, dict[str, float]]:
    """Which of `options` (single tokens, e.g. "1".."6") the model puts next, with the probabilities it gives
    them (renormalised over the options). Uses the endpoint's next-token log-probabilities when it returns
    them (one forward pass); otherwise reads the first option in a short reply and reports no probabilities."""
    probe = getattr(chat, "next_token_logprobs", None)
    if probe is not None:
        top = probe(messages)
        if top:
            weights = {o: math.exp(top[o]) for o in options if o in top}
            total = sum(weights.values())
            if total > 0:
                probs = {o: w / total for o, w in weights.items()}
                return max(probs, key=probs.get), probs
    reply = "".join(chat.stream(messages, max_tokens=4))
    for token in re.findall(r"\d+", reply):
        if token in options:
            return token, {}
    return None, {}


class OpenAIChat:
    """Chat completions (streamed) with retries for transient errors and messages that name the setting."""

    def __init__(self, base_url: str, model: str, api_key: str = "", timeout: float = 120.0, max_retries: int = 2,
                 max_tokens: int = 200, temperature: float = 0.0, setting_hint: str = "RAG_LLM_BASE_URL"):
        if not base_url:
            raise ValueError("base_url is required (RAG_LLM_BASE_URL)")
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be positive, got {max_tokens}")
        from openai import OpenAI

        # The client's own retries cover connection errors, 408/409/429 and 5xx, with exponential backoff.
        self.client = OpenAI(base_url=base_url, api_key=api_key or "not-needed", timeout=timeout,
                             max_retries=max_retries)
        self.base_url = base_url
        self.model = model or "local"
        self.name = f"openai:{self.model}"
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.setting_hint = setting_hint
        self.reconnect = None  # () -> a new base URL, for an endpoint this process can restart (the embedded one)
        # Prompt tokens sent and served from the server's prompt cache, summed over calls (asked for only where the
        # server is known to report them: the embedded llama.cpp). One generation at a time keeps the sums per answer.
        self.count_usage = False
        self.usage_totals = {"prompt_tokens": 0, "cached_tokens": 0}

    @contextmanager
    def _failures(self):
        """Endpoint failures as one line that names the setting to check."""
        import httpx
        import openai

        where = f"LLM endpoint {self.base_url}"
        try:
            yield
        except openai.APITimeoutError as exc:
            raise LLMUnavailable(f"{where} timed out: raise RAG_LLM_TIMEOUT or check the server's load") from exc
        except openai.APIConnectionError as exc:
            raise LLMUnavailable(f"{where} is unreachable: check {self.setting_hint} and that the server "
                                 "is running") from exc
        except openai.AuthenticationError as exc:
            raise LLMUnavailable(f"{where} refused the API key: check RAG_LLM_API_KEY (or OPENAI_API_KEY)") from exc
        except openai.NotFoundError as exc:
            raise LLMUnavailable(f"{where} does not know model {self.model!r}: check RAG_LLM_MODEL") from exc
        except openai.APIStatusError as exc:
            raise LLMUnavailable(f"{where} answered HTTP {exc.status_code}: check RAG_LLM_MODEL and the "
                                 "server's logs") from exc
        except httpx.HTTPError as exc:  # the connection cut mid-stream: never a truncated answer
            raise LLMUnavailable(f"{where} cut the answer off ({type(exc).__name__}): the answer was discarded; "
                                 "try again, and check the server's logs") from exc

    def stream(self, messages: list[dict], max_tokens: int | None = None) -> Iterator[str]:
        import openai

        produced = False
        try:
            for piece in self._stream(messages, max_tokens):
                produced = True
                yield piece
        except LLMUnavailable as exc:
            # The embedded server may have gone with the process that ran it: start (or join) one and retry once,
            # unless part of the answer had already arrived.
            if produced or self.reconnect is None or not isinstance(exc.__cause__, openai.APIConnectionError):
                raise
            self._use(self.reconnect())
            yield from self._stream(messages, max_tokens)

    def _count(self, usage) -> None:
        details = getattr(usage, "prompt_tokens_details", None)
        self.usage_totals["prompt_tokens"] += int(usage.prompt_tokens or 0)
        self.usage_totals["cached_tokens"] += int(getattr(details, "cached_tokens", 0) or 0)

    def _use(self, base_url: str) -> None:
        self.base_url = base_url
        self.client = self.client.with_options(base_url=base_url)

    def _stream(self, messages: list[dict], max_tokens: int | None = None) -> Iterator[str]:
        produced = False
        finish = None
        with self._failures():
            extra = {"stream_options": {"include_usage": True}} if self.count_usage else {}
            response = self.client.chat.completions.create(
                model=self.model, messages=messages, stream=True, temperature=self.temperature,
                max_tokens=max_tokens or self.max_tokens, **extra)
            for event in response:
                if event.usage:
                    self._count(event.usage)
                if not event.choices:
                    continue
                choice = event.choices[0]
                finish = choice.finish_reason or finish
                if choice.delta and choice.delta.content:
                    produced = True
                    yield choice.delta.content
        if not produced:
            raise LLMUnavailable(f"LLM endpoint {self.base_url} returned an empty answer (finish reason {finish!r}): "
                                 "check RAG_LLM_MODEL")
        if finish is None:  # the stream ended without its last event: the connection was cut, the answer is partial
            raise LLMUnavailable(f"LLM endpoint {self.base_url} stopped mid-answer (no finish reason): the answer was "
                                 "discarded; try again, and check the server's logs")

    def next_token_logprobs(self, messages: list[dict], top: int = 10) -> dict[str, float]:
        """The log-probabilities of the most likely next tokens, or {} when the endpoint does not return them
        (some servers reject the parameter, some ignore it)."""
        import openai

        try:
            with self._failures():
                response = self.client.chat.completions.create(
                    model=self.model, messages=messages, max_tokens=1, temperature=0.0, logprobs=True,
                    top_logprobs=top)
        except LLMUnavailable as exc:
            if isinstance(exc.__cause__, openai.BadRequestError | openai.UnprocessableEntityError):
                return {}  # the endpoint does not take the parameter: the caller reads a short reply instead
            raise
        choice = response.choices[0] if response.choices else None
        content = getattr(getattr(choice, "logprobs", None), "content", None)
        if not content:
            return {}
        return {t.token.strip(): t.logprob for t in content[0].top_logprobs or []
                if t.token.strip()} or {content[0].token.strip(): content[0].logprob}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EmbeddedServer:
    """The embedded model served by llama.cpp on 127.0.0.1, started on first use, stopped with the process."""

    def __init__(self, model_path: Path, context: int = 2048, threads: int = 2, slots: int = 3,
                 lock_dir: Path | None = None, nice: int = 0):
        if slots < 1:
            raise ValueError(f"slots must be >= 1, got {slots}")
        self.model_path = Path(model_path)
        self.nice = nice
        self.context = context
        self.slots = slots
        self.threads = threads
        self.lock_dir = Path(lock_dir or self.model_path.parent)
        self._server = None
        self._lock_handle = None
        self.base_url: str | None = None

    def ensure(self, wait_s: float = 120.0) -> str:
        if self.base_url:
            return self.base_url
        if not self.model_path.is_file():
            raise LLMUnavailable(f"the embedded model {self.model_path} is missing: run `make setup` "
                                 "(or set RAG_LLM_BASE_URL to an OpenAI-compatible server)")
        import fcntl

        self.lock_dir.mkdir(parents=True, exist_ok=True)
        handle = open(self.lock_dir / "llm-server.lock", "a+")  # noqa: SIM115 - held for the process lifetime
        endpoint_file = self.lock_dir / "llm-server.json"
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return self._join_existing(endpoint_file, wait_s)
        self._lock_handle = handle
        self._start()
        endpoint_file.write_text(json.dumps({"base_url": self.base_url, "pid": os.getpid()}))
        return self.base_url

    def restart(self) -> str:
        """After the server stopped answering: start our own, or join the one another process now runs."""
        if self._lock_handle is None:  # joined another process's server, and that process is gone
            self.base_url = None
        return self.ensure()

    def _join_existing(self, endpoint_file: Path, wait_s: float) -> str:
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            try:
                url = json.loads(endpoint_file.read_text())["base_url"]
                host, port = url.split("//")[1].split("/")[0].split(":")
                with socket.create_connection((host, int(port)), timeout=1):
                    self.base_url = url
                    return url
            except (OSError, ValueError, KeyError):
                time.sleep(0.5)
        raise LLMUnavailable("another rag process holds the embedded model but its server did not answer: "
                             f"stop it, or remove {endpoint_file} if no rag process is running")

    def _start(self) -> None:
        try:
            import xllamacpp
        except ImportError as exc:
            raise LLMUnavailable("the llama.cpp binding `xllamacpp` is not installed: run `make setup`") from exc
        params = xllamacpp.CommonParams()
        params.model.path = str(self.model_path)
        # Slots are prompt caches, and requests decoded together in one batch: answers come one at a time (the
        # app's queue, the CLI's loop); an English briefing sends RAG_BRIEF_PARALLEL translations at once.
        params.n_ctx = self.context * self.slots
        params.n_parallel = self.slots
        params.port = _free_port()
        params.cpuparams.n_threads = self.threads
        params.cpuparams_batch.n_threads = self.threads
        params.verbosity = 0  # llama.cpp's per-request logs would drown the CLI's output
        params.cache_prompt = True  # reuse the shared prompt prefix (system prompt and example) across questions
        self._server = started_niced(lambda: xllamacpp.Server(params), self.nice, self.model_path)
        self.base_url = f"http://127.0.0.1:{params.port}/v1"


def started_niced(start, nice: int, model_path: Path):
    """Runs `start` on a thread of its own, `nice` steps nicer, so every thread llama.cpp creates inherits it.

    On two cores a generation keeps both busy; niced, its threads yield the CPU to the server's searches and page
    loads (a nice-10 thread weighs 110 against 1024 for nice 0) and take all of it when nothing else runs. Linux
    cannot lower a thread's niceness again without privileges, hence the throwaway thread.
    """
    result: dict = {}

    def run() -> None:
        if nice:
            try:
                os.nice(nice)  # on Linux, this thread's niceness only
            except OSError:  # not allowed: run at the process's priority
                pass
        try:
            result["server"] = start()
        except Exception as exc:  # noqa: BLE001 - the binding raises plain RuntimeErrors
            result["error"] = exc

    thread = threading.Thread(target=run, name="llm-start", daemon=True)
    thread.start()
    thread.join()
    if "error" in result:
        raise LLMUnavailable(f"could not start the embedded model ({result['error']}): check {model_path} "
                             "with `rag setup --force`") from result["error"]
    return result["server"]


def make_chat_model(settings: Settings, embedded: EmbeddedServer | None = None) -> OpenAIChat:
    """The configured endpoint, or the embedded model when RAG_LLM_BASE_URL is empty."""
    if settings.llm_base_url:
        return OpenAIChat(settings.llm_base_url, settings.llm_model, settings.llm_api_key, settings.llm_timeout,
                          settings.llm_max_retries, settings.llm_max_tokens, settings.llm_temperature)
    server = embedded or EmbeddedServer(settings.embedded_llm_path, settings.llm_context, settings.threads,
                                        settings.llm_slots, nice=settings.llm_nice)
    chat = OpenAIChat(server.ensure(), settings.llm_model or EMBEDDED_MODEL_NAME, "", settings.llm_timeout,
                      settings.llm_max_retries, settings.llm_max_tokens, settings.llm_temperature,
                      setting_hint="the embedded model (`make setup`)")
    chat._embedded_server = server  # keep the in-process server alive as long as the client
    chat.reconnect = server.restart
    chat.count_usage = True
    return chat


def as_llama_index_llm(chat: ChatModel, context_window: int = 4096):
    """Our chat model as a llama-index LLM (for CitationQueryEngine baselines): same endpoint, same settings."""
    from llama_index.core.llms import CompletionResponse, CustomLLM, LLMMetadata
    from llama_index.core.llms.callbacks import llm_completion_callback

    class _Adapter(CustomLLM):
        @property
        def metadata(self) -> LLMMetadata:
            return LLMMetadata(context_window=context_window, num_output=256, model_name=chat.name)

        @llm_completion_callback()
        def complete(self, prompt: str, formatted: bool = False, **kwargs) -> CompletionResponse:
            return CompletionResponse(text="".join(chat.stream([{"role": "user", "content": prompt}])))

        @llm_completion_callback()
        def stream_complete(self, prompt: str, formatted: bool = False, **kwargs):
            text = ""
            for token in chat.stream([{"role": "user", "content": prompt}]):
                text += token
                yield CompletionResponse(text=text, delta=token)

    return _Adapter()
