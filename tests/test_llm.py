"""The chat-model contract, run against every implementation, and the failures a user can meet."""

import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rag.errors import LLMUnavailable
from rag.llm import EmbeddedServer, OpenAIChat, started_niced
from tests.fakes import QueueLLM


class _FakeChatServer(BaseHTTPRequestHandler):
    """Streams a fixed reply as server-sent events; paths select failure modes."""

    reply = "قتل 5 من عناصر الفصائل [1]."

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        mode = self.path.split("/")[1]
        if mode in ("status500", "status401", "status404"):
            code = int(mode[-3:])
            data = json.dumps({"error": {"message": "boom", "type": "x"}}).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        if mode == "slow":
            import time

            time.sleep(3)
        if mode == "status429":
            self.send_response(429)
            self.send_header("Retry-After", "0")
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"error": {"message": "slow down", "type": "rate_limit"}}')
            return
        text = "" if mode == "empty" else self.reply
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        pieces = [text[i:i + 5] for i in range(0, len(text), 5)]
        for piece in pieces:
            chunk = {"id": "1", "object": "chat.completion.chunk", "created": 0, "model": body["model"],
                     "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            if mode == "cut":  # the connection drops after the first piece: no last event
                self.wfile.flush()
                self.close_connection = True
                return
        done = {"id": "1", "object": "chat.completion.chunk", "created": 0, "model": body["model"],
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        self.wfile.write(f"data: {json.dumps(done)}\n\ndata: [DONE]\n\n".encode())

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def chat_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeChatServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _real_embedded():
    from rag.llm import make_chat_model
    from rag.settings import Settings

    return make_chat_model(Settings(llm_max_tokens=40))


@pytest.fixture(params=["queue", "openai", pytest.param("embedded", marks=pytest.mark.integration)])
def any_chat(request, chat_server):
    if request.param == "queue":
        return QueueLLM("قتل 5 من عناصر الفصائل [1].")
    if request.param == "openai":
        return OpenAIChat(f"{chat_server}/ok/v1", "m", max_retries=0)
    return _real_embedded()


def test_chat_contract(any_chat):
    messages = [{"role": "system", "content": "أجب بالعربية بإيجاز."},
                {"role": "user", "content": "ما عاصمة العراق؟ أجب بكلمة واحدة."}]
    pieces = list(any_chat.stream(messages, max_tokens=20))
    assert pieces and all(isinstance(p, str) for p in pieces)
    assert "".join(pieces).strip()
    assert any_chat.name


@pytest.mark.parametrize("path, setting", [("status500", "HTTP 500"), ("status401", "RAG_LLM_API_KEY"),
                                           ("status404", "RAG_LLM_MODEL"), ("empty", "empty answer")])
def test_endpoint_errors_name_what_to_check(chat_server, path, setting):
    chat = OpenAIChat(f"{chat_server}/{path}/v1", "m", max_retries=0)
    with pytest.raises(LLMUnavailable, match=setting):
        list(chat.stream([{"role": "user", "content": "x"}]))


def test_unreachable_endpoint_names_the_setting():
    chat = OpenAIChat("http://127.0.0.1:9/v1", "m", max_retries=0, timeout=2)
    with pytest.raises(LLMUnavailable, match="RAG_LLM_BASE_URL"):
        list(chat.stream([{"role": "user", "content": "x"}]))


def test_transient_errors_are_retried(chat_server, monkeypatch):
    calls = {"n": 0}
    original = _FakeChatServer.do_POST

    def flaky(self):
        calls["n"] += 1
        if calls["n"] == 1:
            self.path = "/status500/v1/chat/completions"
        else:
            self.path = "/ok/v1/chat/completions"
        original(self)

    monkeypatch.setattr(_FakeChatServer, "do_POST", flaky)
    chat = OpenAIChat(f"{chat_server}/ok/v1", "m", max_retries=2)
    chat.client = chat.client.with_options(max_retries=2)
    assert "".join(chat.stream([{"role": "user", "content": "x"}])) == _FakeChatServer.reply
    assert calls["n"] == 2


def test_missing_embedded_model_says_run_setup(tmp_path):
    with pytest.raises(LLMUnavailable, match="make setup"):
        EmbeddedServer(tmp_path / "missing.gguf").ensure()


def _niceness() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread niceness is Linux's")
def test_the_model_threads_start_niced_and_the_caller_keeps_its_priority():
    """The embedded model's threads are created by `start`; each inherits the niceness of the thread that made it,
    so searches on the server's own threads are not queued behind a generation (issue 12's load figures)."""
    seen = {}

    def start():  # as llama.cpp does: threads of its own, working after the start returns
        worker = threading.Thread(target=lambda: seen.setdefault("worker", _niceness()))
        worker.start()
        worker.join()
        return "server"

    before = _niceness()
    assert started_niced(start, 7, "model.gguf") == "server"
    assert seen["worker"] == min(before + 7, 19) and _niceness() == before


def test_a_model_that_fails_to_start_says_what_to_check():
    def start():
        raise RuntimeError("bad magic")

    with pytest.raises(LLMUnavailable, match="bad magic.*rag setup --force"):
        started_niced(start, 10, "model.gguf")


@pytest.mark.parametrize("kwargs, bad", [({"base_url": ""}, "base_url"), ({"base_url": "http://x", "max_tokens": 0},
                                                                             "max_tokens")])
def test_constructor_names_the_bad_value(kwargs, bad):
    with pytest.raises(ValueError, match=bad):
        OpenAIChat(model="m", **kwargs)
