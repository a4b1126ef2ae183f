"""The HTTP API with the fake models: every route, its errors, access, the shared generation queue, metrics, and
the OpenAI-compatible face driven by the `openai` client against a live server."""

import json
import threading
import time
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient

from rag.api import chat_history, create_app, parse_api_keys
from rag.cli import main
from rag.errors import LLMUnavailable
from rag.service import Service
from rag.settings import Settings
from tests.fakes import ExtractiveLLM, QueueLLM
from tests.test_ui import QUESTION, RoutingLLM, serve, service  # noqa: F401 - fixtures

EN_QUESTION = "How many hours did Asaib Ahl al-Haq give the government?"


@pytest.fixture
def client(service):  # noqa: F811
    service._llm = RoutingLLM()
    return TestClient(create_app(service=service, ui=False))


def same_record(a: dict, b: dict) -> bool:
    """Two Answer records alike but for their timings."""
    return {k: v for k, v in a.items() if k != "timings"} == {k: v for k, v in b.items() if k != "timings"}


def sse_events(text: str) -> list[tuple[str, dict]]:
    out = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        out.append((fields["event"], json.loads(fields["data"])))
    return out


def test_ask_gives_the_answer_record_and_streams_it_as_events(client):
    response = client.post("/api/ask", json={"question": QUESTION})
    assert response.status_code == 200
    answer = response.json()
    assert "48" in answer["answer"] and answer["citations"][0]["article_id"] == "004_11e11d9def2c09fb"
    assert {"refused", "quoted", "flags", "evidence", "timings"} <= answer.keys()

    streamed = client.post("/api/ask", json={"question": QUESTION, "stream": True})
    assert streamed.headers["content-type"].startswith("text/event-stream")
    events = sse_events(streamed.text)
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "evidence" and kinds[-1] == "answer" and "token" in kinds
    assert "48" in "".join(data["text"] for kind, data in events if kind == "token")
    assert same_record(events[-1][1], answer)


def test_a_follow_up_uses_the_history(client):
    body = {"question": "ومتى؟", "history": [{"question": QUESTION, "answer": "48 ساعة [1]"}]}
    answer = client.post("/api/ask", json=body).json()
    assert answer["standalone_question"]  # rewritten with the conversation


def test_cli_app_and_api_give_the_same_answer_record(service, tmp_path, monkeypatch, capsys):  # noqa: F811
    from gradio_client import Client

    import rag.llm

    service._llm = RoutingLLM()
    monkeypatch.setattr(rag.llm, "make_chat_model", lambda settings: ExtractiveLLM())
    for name in ("RAG_ANSWER_MIN_SCORE_AR", "RAG_ANSWER_MIN_SCORE_EN"):
        monkeypatch.setenv(name, "0")
    capsys.readouterr()
    assert main(["ask", QUESTION, "--json"]) == 0
    from_cli = json.loads(capsys.readouterr().out)
    server = serve(service)
    try:
        from_api = TestClient(create_app(service=service, ui=False)).post("/api/ask", json={"question": QUESTION})
        from_app = Client(server.url + "/", verbose=False).predict(QUESTION, api_name="/ask")
    finally:
        server.close()
    assert "48" in from_cli["answer"]
    assert same_record(from_cli, from_api.json()) and same_record(from_cli, from_app)


def test_retrieve_with_filters_and_field_errors(client):
    hits = client.post("/api/retrieve", json={"question": "القصف الأمريكي", "k": 3}).json()
    assert hits["lang"] == "ar" and len(hits["hits"]) == 3 and hits["hits"][0]["rank"] == 1
    dated = client.post("/api/retrieve", json={"question": "القصف الأمريكي", "since": "2021-06-28",
                                               "until": "2021-06-28"}).json()["hits"]
    assert dated and {h["date"] for h in dated} == {"2021-06-28"}
    bad = client.post("/api/retrieve", json={"question": "القصف", "since": "28/06/2021"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_request"
    assert "since" in bad.json()["error"]["message"]
    missing = client.post("/api/retrieve", json={"k": 2})
    assert missing.status_code == 422 and "question" in missing.json()["error"]["message"]


def test_questions_too_long_or_empty_are_refused_before_any_model_runs(client, service):  # noqa: F811
    service._llm = QueueLLM()  # fails the test if called
    too_long = client.post("/api/ask", json={"question": "س" * (service.settings.max_question_chars + 1)})
    assert too_long.status_code == 413 and "RAG_MAX_QUESTION_CHARS" in too_long.json()["error"]["message"]
    assert client.post("/api/ask", json={"question": "   "}).json()["error"]["code"] == "bad_input"
    assert client.post("/api/ask", json={"question": "س" * 200_000}).status_code == 422  # refused by the schema
    assert client.post("/api/ask", content=b"{not json", headers={"content-type": "application/json"}
                       ).status_code == 422
    assert service._llm.calls == []


def test_brief_as_json_markdown_or_html(client):
    briefing = client.post("/api/brief", json={"date": "2021-06-28", "lang": "en"})
    assert briefing.status_code == 200 and briefing.json()["stories"]
    md = client.post("/api/brief", json={"date": "2021-06-28", "lang": "en", "format": "md"})
    assert md.headers["content-type"].startswith("text/markdown") and md.text.startswith("# News briefing")
    html = client.post("/api/brief", json={"all": True, "format": "html"})
    assert html.headers["content-type"].startswith("text/html") and 'dir="rtl"' in html.text
    both = client.post("/api/brief", json={"date": "2021-06-28", "all": True})
    assert both.status_code == 422 and "one of" in both.json()["error"]["message"]
    picked = client.post("/api/brief", json={"articles": ["004_11e11d9def2c09fb"]}).json()
    assert [s["article_ids"] for s in picked["stories"]] == [["004_11e11d9def2c09fb"]]
    unknown = client.post("/api/brief", json={"articles": ["004_11e11d9def2c09fb", "nope"]})
    assert unknown.status_code == 422 and "'nope'" in unknown.json()["error"]["message"]
    mixed = client.post("/api/brief", json={"articles": ["004_11e11d9def2c09fb"], "all": True})
    assert mixed.status_code == 422


def test_library_list_get_upload_and_delete(client, tmp_path):
    page = client.get("/api/articles", params={"limit": 2}).json()
    assert page["total"] == 5 and len(page["articles"]) == 2 and page["articles"][0]["chunks"] > 0
    first = page["articles"][0]["id"]
    assert client.get(f"/api/articles/{first}").json()["text"]
    missing = client.get("/api/articles/nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"

    files = [("files", ("bridge news.txt", "افتتح جسر جديد في الموصل بطول 300 متر.".encode(), "text/plain")),
             ("files", ("photo.exe", b"\x00\x01", "application/octet-stream"))]
    report = client.post("/api/articles", files=files).json()
    assert report["added"] == ["bridge_news"] and report["skipped"][0]["origin"] == "photo.exe"
    records = {"articles": [{"id": "dam", "title": "سد الموصل", "text": "بدأت أعمال صيانة سد الموصل اليوم.",
                             "date": "2021-07-01", "source": "واع"}]}
    assert client.post("/api/articles", json=records).json()["added"] == ["dam"]
    assert client.get("/api/articles").json()["total"] == 7
    assert client.post("/api/articles", json={"articles": [{"title": "no text"}]}).status_code == 422
    assert client.post("/api/articles", content=b"x", headers={"content-type": "text/plain"}).status_code == 415
    assert client.delete("/api/articles/dam").json() == {"removed": "dam"}
    assert client.delete("/api/articles/dam").status_code == 404
    hits = client.post("/api/retrieve", json={"question": "جسر الموصل", "k": 1}).json()["hits"]
    assert hits[0]["article_id"] == "bridge_news"  # the API's writes are seen by its reads


def test_api_keys_guard_every_route_but_health(service, tmp_path):  # noqa: F811
    keys = tmp_path / "keys"
    keys.write_text("# desk\nkey-one\nkey-two\n")
    assert parse_api_keys(str(keys)) == ["key-one", "key-two"] and parse_api_keys("a, b") == ["a", "b"]
    service.settings.api_keys = str(keys)
    client = TestClient(create_app(service=service, ui=False))
    for method, path, body in [("post", "/api/ask", {"question": QUESTION}), ("get", "/api/articles", None),
                               ("post", "/api/retrieve", {"question": "x"}), ("get", "/v1/models", None),
                               ("post", "/v1/chat/completions", {"messages": []}), ("get", "/metrics", None),
                               ("delete", "/api/articles/x", None)]:
        refused = client.request(method, path, json=body)
        assert refused.status_code == 401, path
        assert refused.json()["error"]["code"] == "unauthorized" and refused.headers["www-authenticate"] == "Bearer"
        wrong = client.request(method, path, json=body, headers={"Authorization": "Bearer key-three"})
        assert wrong.status_code == 401, path
    assert client.get("/api/health").status_code == 200
    assert client.get("/api/articles", headers={"Authorization": "Bearer key-two"}).status_code == 200


@contextmanager
def another_reader_generating(service, for_s: float = 10.0):  # noqa: F811
    """A generation slot taken by another reader's answer: until the block ends, or for `for_s` seconds."""
    held, done = threading.Event(), threading.Event()

    def generation():
        with service.slots.hold():
            held.set()
            done.wait(for_s)

    worker = threading.Thread(target=generation)
    worker.start()
    held.wait(5)
    try:
        yield
    finally:
        done.set()
        worker.join()


def test_a_full_queue_is_503_with_retry_after_and_reads_are_not_stuck(client, service):  # noqa: F811
    service.slots.wait_s = 0.2
    with another_reader_generating(service):
        for body in ({"question": QUESTION}, {"question": QUESTION, "stream": True}):
            busy = client.post("/api/ask", json=body)
            assert busy.status_code == 503 and busy.json()["error"]["code"] == "busy"
            assert int(busy.headers["retry-after"]) >= 1
        started = time.perf_counter()
        assert client.post("/api/retrieve", json={"question": "القصف"}).status_code == 200
        assert client.get("/api/articles").status_code == 200
        assert time.perf_counter() - started < 5
        metrics = client.get("/metrics").text
        assert "rag_generations_running 1.0" in metrics
    assert client.post("/api/ask", json={"question": QUESTION}).status_code == 200


def test_retry_after_is_shorter_than_the_servers_keep_alive(client, service):  # noqa: F811
    """A reader told to come back in 5 s, against uvicorn's default 5 s keep-alive, sent its retry on a connection
    the server was closing and got a reset, no response (the load test's intermittent lost ask). Every Retry-After
    sent must end well before an idle connection is closed, however long the queue's estimate."""
    from rag.api import KEEP_ALIVE_S, RunningServer

    service.slots.wait_s = 0.2
    service.slots._mean_s = 500.0  # a queue estimated to take minutes
    with another_reader_generating(service):
        busy = client.post("/api/ask", json={"question": QUESTION})
    assert busy.status_code == 503 and KEEP_ALIVE_S - int(busy.headers["retry-after"]) >= 10
    server = RunningServer(create_app(service=service, ui=False), "127.0.0.1", 0)
    assert server._server.config.timeout_keep_alive == KEEP_ALIVE_S


def test_answers_waiting_for_the_model_leave_searches_and_health_their_threads(service):  # noqa: F811
    """Under load, waiting answers once held all 40 threads of the shared pool, and searches, library reads and
    /api/health waited seconds behind them. Shrunk to 2 threads, the shared pool still serves them at once
    while 6 answers wait on threads of their own (a real server: the test client serialises requests)."""
    import anyio.to_thread
    import httpx

    from rag.api import RunningServer
    from tests.test_ui import free_port

    app = create_app(service=service, ui=False)

    async def two_shared_threads(scope, receive, send):
        anyio.to_thread.current_default_thread_limiter().total_tokens = 2
        await app(scope, receive, send)

    service._llm = RoutingLLM()
    service.slots.wait_s = 600  # the estimate (8 s a generation) must not turn the 6 away
    server = RunningServer(two_shared_threads, "127.0.0.1", free_port()).start()
    try:
        assert httpx.post(server.url + "/api/ask", json={"question": QUESTION}, timeout=60).status_code == 200
        with another_reader_generating(service, for_s=60):
            answered = []

            def ask():
                answered.append(httpx.post(server.url + "/api/ask", json={"question": QUESTION}, timeout=60).text)

            waiting = [threading.Thread(target=ask) for _ in range(6)]
            for worker in waiting:
                worker.start()
            deadline = time.monotonic() + 30
            while service.slots.waiting < 6 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert service.slots.waiting == 6, answered
            started = time.perf_counter()
            assert httpx.post(server.url + "/api/retrieve", json={"question": "القصف"}).status_code == 200
            assert httpx.get(server.url + "/api/articles").status_code == 200
            assert httpx.get(server.url + "/api/health").status_code == 200
            assert time.perf_counter() - started < 2
        for worker in waiting:
            worker.join(60)
    finally:
        server.close()


def test_a_question_the_articles_cannot_answer_is_refused_at_once_without_queueing(client, service):  # noqa: F811
    """A refusal that needs no model takes no generation slot: it does not wait behind generations, and it does
    not get 503 when the queue is full."""
    service.settings = service.settings.model_copy(update={"answer_min_score_ar": 1.0})  # nothing scores that high
    service.slots.wait_s, service.slots.max_waiting = 0.2, 0
    with another_reader_generating(service):
        for body in ({"question": QUESTION}, {"question": QUESTION, "stream": True}):
            started = time.perf_counter()
            response = client.post("/api/ask", json=body)
            assert response.status_code == 200 and time.perf_counter() - started < 2
            answer = response.json() if not body.get("stream") else sse_events(response.text)[-1][1]
            assert answer["refused"] and answer["timings"]["queue_s"] == 0
        assert service.slots.running == 1 and service.slots.waiting == 0


def test_a_full_waiting_line_is_503_at_once(client, service):  # noqa: F811
    service.slots.wait_s, service.slots.max_waiting = 30, 0
    with another_reader_generating(service):
        started = time.perf_counter()
        for body in ({"question": QUESTION}, {"question": QUESTION, "stream": True}):
            busy = client.post("/api/ask", json=body)
            assert busy.status_code == 503 and "RAG_LLM_QUEUE_MAX" in busy.json()["error"]["message"]
        assert time.perf_counter() - started < 2  # not after waiting 30 s


def test_the_llm_failing_mid_stream_is_an_error_event_not_a_truncated_answer(client, service):  # noqa: F811
    service._llm = QueueLLM(LLMUnavailable("LLM endpoint unreachable: check RAG_LLM_BASE_URL"))
    events = sse_events(client.post("/api/ask", json={"question": QUESTION, "stream": True}).text)
    assert events[-1][0] == "error" and "RAG_LLM_BASE_URL" in events[-1][1]["error"]["message"]
    assert "answer" not in [kind for kind, _ in events]
    service._llm = QueueLLM(LLMUnavailable("LLM endpoint unreachable: check RAG_LLM_BASE_URL"))
    failed = client.post("/api/ask", json={"question": QUESTION})
    assert failed.status_code == 502 and failed.json()["error"]["code"] == "llm_unavailable"


def test_an_unexpected_error_is_json_without_a_traceback(service, monkeypatch):  # noqa: F811
    monkeypatch.setattr(service, "articles", lambda: 1 / 0)
    response = TestClient(create_app(service=service, ui=False), raise_server_exceptions=False).get("/api/articles")
    assert response.status_code == 500 and response.json()["error"]["code"] == "internal"
    assert "ZeroDivision" not in response.text and "Traceback" not in response.text


def test_health_and_metrics(client, tmp_path, fake_models):
    health = client.get("/api/health").json()
    assert health["status"] == "ok" and health["index"]["loaded"] and health["index"]["articles"] == 5
    assert health["embedder"] == fake_models.name and health["generations"]["limit"] == 1
    client.post("/api/retrieve", json={"question": "القصف"})
    client.get("/api/articles/nope")
    metrics = client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert 'rag_http_requests_total{method="POST",route="/api/retrieve",status="200"} 1.0' in text
    assert 'route="/api/articles/{article_id}",status="404"' in text  # the template, not the id
    assert "rag_index_articles 5.0" in text and "rag_generations_queued 0.0" in text
    assert 'rag_http_request_duration_seconds_bucket{le="0.5",route="/api/retrieve"}' in text

    empty = Service(Settings(index_dir=tmp_path / "none", llm_base_url="http://127.0.0.1:9/v1"),
                    embedder=fake_models)
    down = TestClient(create_app(service=empty, ui=False)).get("/api/health").json()
    assert down["status"] == "degraded" and not down["index"]["loaded"] and "rag ingest" in down["index"]["error"]
    assert down["llm"]["reachable"] is False


def test_docs_show_every_route(client):
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/api/ask", "/api/retrieve", "/api/brief", "/api/articles", "/api/articles/{article_id}",
                 "/api/health", "/metrics", "/v1/models", "/v1/chat/completions"):
        assert path in paths, path
    assert set(paths["/api/articles"]) == {"get", "post"} and "delete" in paths["/api/articles/{article_id}"]
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert schemas["Answer"]["properties"]["quoted"].get("description")  # the records' fields are described
    assert client.get("/docs").status_code == 200


def test_chat_history_takes_the_last_user_message_and_drops_our_source_lists():
    from rag.api import ChatMessage

    messages = [ChatMessage(role="system", content="be brief"), ChatMessage(role="user", content=QUESTION),
                ChatMessage(role="assistant", content="48 ساعة [1]\n\n**المصادر**\n- [1] عنوان (`004`)"),
                ChatMessage(role="user", content=[{"type": "text", "text": "ومن أمهل؟"}])]
    assert chat_history(messages) == ("ومن أمهل؟", [(QUESTION, "48 ساعة [1]")])


def test_the_openai_client_gets_a_cited_answer_streamed_and_not(service):  # noqa: F811
    import openai

    service._llm = RoutingLLM()
    server = serve(service)  # the app and the API, as `make run` serves them
    try:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="none", max_retries=0)
        assert [m.id for m in client.models.list()] == ["news-rag"]
        messages = [{"role": "user", "content": QUESTION}]
        completion = client.chat.completions.create(model="news-rag", messages=messages)
        content = completion.choices[0].message.content
        assert "48" in content and "[1]" in content and "**المصادر**" in content and "004_11e11d9def2c09fb" in content
        assert completion.model_extra["citations"][0]["article_id"] == "004_11e11d9def2c09fb"
        chunks = list(client.chat.completions.create(model="news-rag", messages=messages, stream=True))
        assert "".join(c.choices[0].delta.content or "" for c in chunks) == content
        assert chunks[-1].choices[0].finish_reason == "stop" and chunks[-1].model_extra["citations"]
        with pytest.raises(openai.UnprocessableEntityError):
            client.chat.completions.create(model="news-rag", messages=[{"role": "system", "content": "hi"}])
    finally:
        server.close()


def test_a_queued_stream_says_its_place_and_the_answer_how_long_it_waited(client, service):  # noqa: F811
    with another_reader_generating(service, for_s=0.5):  # finishing in half a second
        events = sse_events(client.post("/api/ask", json={"question": QUESTION, "stream": True}).text)
    assert events[0] == ("queued", {"position": 1, "estimate_s": events[0][1]["estimate_s"]})
    assert events[-1][0] == "answer" and events[-1][1]["timings"]["queue_s"] >= 0.3


def test_closing_a_started_stream_frees_its_generation_slot(service):  # noqa: F811
    import asyncio

    from rag.api import answer_threads, start_stream

    service._llm = RoutingLLM()
    events = asyncio.run(start_stream(service.stream(QUESTION), answer_threads(service.settings)))  # what a streaming response holds
    assert next(events)["type"] == "evidence" and service.slots.running == 1
    events.close()  # the client went away
    assert service.slots.running == 0


def test_ingest_reports_name_what_was_sent_never_a_server_path(client):
    feed = "\n".join(json.dumps(r, ensure_ascii=False) for r in [
        {"id": "a/b", "text": "خبر أول عن الموصل."}, {"id": "dup", "text": "نص أول."}, {"id": "dup", "text": "نص ثان."}])
    uploaded = client.post("/api/articles", files=[("files", ("feed.jsonl", feed.encode(), "application/json"))]).json()
    records = client.post("/api/articles", json={"articles": [{"id": "twice", "text": "نص أول."},
                                                              {"id": "twice", "text": "نص ثان."}]}).json()
    for report in (uploaded, records):
        assert report["warnings"] and "/tmp" not in json.dumps(report) and "rag-" not in json.dumps(report)
    assert {w["origin"] for w in uploaded["warnings"]} == {"feed.jsonl:1", "feed.jsonl:3"}
    assert records["warnings"][0]["origin"] == "record:2" and "(also record:1)" in records["warnings"][0]["reason"]


def test_cli_and_api_give_the_same_retrieval_record(client, capsys):
    capsys.readouterr()
    assert main(["retrieve", "القصف الأمريكي", "--k", "3", "--json"]) == 0
    from_cli = json.loads(capsys.readouterr().out)
    from_api = client.post("/api/retrieve", json={"question": "القصف الأمريكي", "k": 3}).json()
    assert from_cli == from_api and len(from_cli["hits"]) == 3
