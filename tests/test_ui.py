import json
import socket

import pytest

from rag.api import RunningServer, create_app
from rag.cli import main
from rag.errors import RagError
from rag.service import Service
from rag.settings import Settings
from rag.ui import library_rows, parse_auth, passage_html, search_html
from tests.fakes import ExtractiveLLM, SummaryLLM

QUESTION = "كم ساعة أمهلت عصائب أهل الحق الحكومة؟"


@pytest.fixture
def service(tmp_path, fake_models, seeds_dir, monkeypatch):
    monkeypatch.setenv("RAG_INDEX_DIR", str(tmp_path / "index"))
    assert main(["ingest", str(seeds_dir), "--json"]) == 0
    settings = Settings(answer_min_score_ar=0.0, answer_min_score_en=0.0, cache_dir=tmp_path / "cache",
                        briefs_dir=tmp_path / "briefs")
    return Service(settings, embedder=fake_models, llm=ExtractiveLLM())


def test_search_html_sets_direction_and_escapes(service):
    page = search_html(service, "القصف الأمريكي", 2)
    assert page.count('class="passage" dir="auto"') == 2 and "&quot;" in page
    assert len(library_rows(service)) == 5


def test_missing_index_is_a_message_not_a_traceback(tmp_path, fake_models):
    service = Service(Settings(index_dir=tmp_path / "none"), embedder=fake_models, llm=ExtractiveLLM())
    assert "rag ingest seeds/" in search_html(service, "سؤال")
    assert library_rows(service) == []
    for call in (lambda: service.ask(QUESTION), service.briefing):
        with pytest.raises(RagError, match="rag ingest seeds/"):
            call()


def test_ask_returns_the_answer_with_citations_and_the_passage_is_highlighted(service):
    result = service.ask(QUESTION)
    assert "48" in result.answer and "[1]" in result.answer
    [citation] = result.citations
    assert citation.article_id == "004_11e11d9def2c09fb"
    page = passage_html(service, citation, "src-1-1")
    assert page.startswith('<details class="source" id="src-1-1" dir="auto">')
    marked = [part.split("</mark>")[0] for part in page.split("<mark>")[1:]]
    assert any("48" in m for m in marked) and "".join(marked) != page  # the excerpt, not the whole chunk


def test_uploads_are_ingested_under_safe_names_and_can_be_removed(service, tmp_path):
    evil = tmp_path / "evil name;rm.txt"
    evil.write_text("خبر جديد عن افتتاح جسر في الموصل بطول 300 متر.", encoding="utf-8")
    binary = tmp_path / "photo.exe"
    binary.write_bytes(b"\x00\x01")
    report = service.ingest([str(evil), str(binary)]).model_dump()
    assert report["added"] == ["evil_name_rm"]
    assert report["skipped"] == [{"origin": "photo.exe", "reason": "not one of .txt, .md, .html, .htm, .json, .jsonl"}]
    assert "rag-upload" not in json.dumps(report)  # no server paths leak into the report
    assert "evil_name_rm" in [row[0] for row in library_rows(service)]
    service.remove("evil_name_rm")
    from rag.errors import NotFound

    with pytest.raises(NotFound, match="no article 'evil_name_rm'"):
        service.remove("evil_name_rm")


def test_auth_setting_accepts_pairs_or_a_file(tmp_path):
    assert parse_auth("") is None
    assert parse_auth("ana:secret,bob:pw") == [("ana", "secret"), ("bob", "pw")]
    users = tmp_path / "users"
    users.write_text("# editors\nana:secret\n")
    assert parse_auth(str(users)) == [("ana", "secret")]
    from rag.errors import BadInput

    with pytest.raises(BadInput, match="user:password"):
        parse_auth("nopassword")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(service: Service) -> RunningServer:
    """The app and the API as `rag serve` runs them, in this process, on a free port."""
    return RunningServer(create_app(service=service), "127.0.0.1", free_port()).start()


@pytest.fixture
def running_app(service):
    service._llm = RoutingLLM()
    server = serve(service)
    yield server.url + "/"
    server.close()


class RoutingLLM:
    """Answers questions extractively and briefing prompts with a summary: one fake for the whole app."""

    name = "fake:routing"

    def __init__(self):
        self.answers, self.briefs = ExtractiveLLM(), SummaryLLM()

    def stream(self, messages, max_tokens=None):
        target = self.briefs if "briefing" in messages[-1]["content"] or "موجز" in messages[-1]["content"] else \
            self.answers
        return target.stream(messages, max_tokens)


def test_gradio_client_calls_ask_brief_and_ingest(running_app, tmp_path):
    from gradio_client import Client, handle_file

    client = Client(running_app, verbose=False)
    result = client.predict(QUESTION, api_name="/ask")
    assert "48" in result["answer"] and result["citations"][0]["article_id"] == "004_11e11d9def2c09fb"
    briefing = client.predict("2021-06-28", "", "en", api_name="/brief")
    assert briefing.startswith("# News briefing — 2021-06-28") and "## Sources" in briefing
    empty_day = client.predict("1999-01-01", "", "ar", api_name="/brief")
    assert "لا توجد مقالات بتاريخ \u20661999-01-01\u2069" in empty_day
    article = tmp_path / "bridge.txt"
    article.write_text("افتتح جسر جديد في الموصل.", encoding="utf-8")
    report, table = client.predict([handle_file(str(article))], api_name="/ingest")
    assert json.loads(report)["added"] == ["bridge"]


class CountingLLM(ExtractiveLLM):
    """Records how many generations run at once; each takes a little while, as a real one does."""

    def __init__(self):
        super().__init__()
        import threading

        self.lock, self.running, self.peak = threading.Lock(), 0, 0

    def stream(self, messages, max_tokens=None):
        import time

        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            time.sleep(0.05)
            yield from super().stream(messages, max_tokens)
        finally:
            with self.lock:
                self.running -= 1


def test_twenty_readers_at_once_are_queued_one_generation_at_a_time(service):
    from concurrent.futures import ThreadPoolExecutor

    from gradio_client import Client

    llm = service._llm = CountingLLM()
    server = serve(service)
    try:
        def one(_):
            return Client(server.url + "/", verbose=False).predict(QUESTION, api_name="/ask")

        with ThreadPoolExecutor(20) as pool:
            results = list(pool.map(one, range(20)))
    finally:
        server.close()
    assert all("48" in r["answer"] for r in results) and len(results) == 20
    assert llm.peak == 1  # RAG_UI_LLM_CONCURRENCY=1: queued, never two generations at once


def test_an_unreachable_llm_is_a_message_for_the_reader(service):
    from rag.errors import LLMUnavailable
    from tests.fakes import QueueLLM

    down = LLMUnavailable("cannot reach the LLM endpoint: check RAG_LLM_BASE_URL")
    service._llm = QueueLLM(down, down)
    with pytest.raises(RagError, match="RAG_LLM_BASE_URL"):
        service.ask(QUESTION)
    with pytest.raises(RagError, match="RAG_LLM_BASE_URL"):
        service.briefing("2021-06-28", lang="en")  # English sentences are the model's renderings
    assert service.briefing("2021-06-28", use_cache=False).stories  # Arabic ones are chosen and quoted in code
