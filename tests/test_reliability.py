"""The reliability battery's fast part (fakes): bad input to ingest and questions, crashes and faults of the
index (kill -9 mid-ingest, a damaged generation, a full disk, two writers). Each test fails when its protection
is removed; `rag bench reliability` prints the same cases as a table."""

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rag.chunk import ArabicChunker
from rag.cli import main
from rag.errors import BadInput, IndexBusy, IndexWriteFailed, RagError
from rag.ingest import ArticleReader, Ingestor, decode_text, safe_article_id
from rag.retrieve import check_question
from rag.store import LocalStore, write_lock
from tests.fakes import HashEmbedder
from tests.test_ui import service  # noqa: F401 - fixture

ROOT = Path(__file__).resolve().parent.parent
TEXT = "أعلنت وزارة النقل العراقية افتتاح جسر جديد في الموصل بطول 300 متر. وقال الوزير إن العمل استغرق عامين."


def read(*paths, max_chars=200_000):
    reader = ArticleReader(max_chars)
    articles = list(reader.read(paths))
    return articles, {Path(s.origin).name: s.reason for s in reader.skipped}, reader.warnings


# ---- bad input: ingest ------------------------------------------------------------------------------------------
def tried(battery, case: str, expected: str, observed: str, passed: bool) -> bool:
    battery.count("inputs tried")
    return battery.case(case, expected, observed, passed)


def test_empty_binary_and_undecodable_files_are_skipped_with_reasons(tmp_path, battery):
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "blank.txt").write_text("  \n\t \n")
    (tmp_path / "photo.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (tmp_path / "latin1.txt").write_bytes("café à Bagdad".encode("latin-1"))
    (tmp_path / "scripts.html").write_text("<html><script>alert(1)</script><style>p{}</style></html>")
    articles, skipped, _ = read(tmp_path)
    assert articles == []
    for name, case, reason in [("empty.txt", "empty file", "empty"), ("blank.txt", "whitespace-only file", "empty"),
                               ("photo.txt", "binary file", "binary"), ("latin1.txt", "non-UTF-8 file", "iconv"),
                               ("scripts.html", "HTML of scripts only", "empty")]:
        assert tried(battery, f"ingest: {case}", f"skipped ({reason})", skipped.get(name, "kept"),
                     reason in skipped.get(name, ""))


def test_utf16_and_utf8_with_a_bom_are_decoded(tmp_path, battery):
    (tmp_path / "le.txt").write_bytes(TEXT.encode("utf-16"))  # with its BOM, as Windows writes it
    (tmp_path / "bom.txt").write_bytes(b"\xef\xbb\xbf" + TEXT.encode())
    (tmp_path / "be.txt").write_bytes(b"\xfe\xff" + TEXT.encode("utf-16-be"))
    articles, skipped, _ = read(tmp_path)
    assert tried(battery, "ingest: UTF-16 LE/BE and UTF-8 with a BOM", "decoded, 3 articles",
                 f"{sum(a.text == TEXT for a in articles)} decoded", sum(a.text == TEXT for a in articles) == 3)
    assert sorted(a.id for a in articles) == ["be", "bom", "le"] and not skipped
    assert decode_text(b"\xff\xfe\x00")[0] is None  # a broken UTF-16 file is a reason, not a crash


def test_an_oversized_file_is_skipped_in_under_a_second_without_being_read(tmp_path, battery):
    big = tmp_path / "dump.txt"
    with open(big, "wb") as f:
        f.truncate(10 * 1024 * 1024)  # 10 MB, sparse: reading it would show in the time
    started = time.perf_counter()
    articles, skipped, _ = read(big, max_chars=200_000)
    took = time.perf_counter() - started
    assert tried(battery, "ingest: 10 MB text file", "skipped < 1 s", f"skipped in {took:.3f} s",
                 took < 1 and not articles and "RAG_MAX_ARTICLE_CHARS" in skipped["dump.txt"])
    (tmp_path / "long.txt").write_text("كلمة " * 50_000)  # 250,000 characters, under the byte cap
    assert "RAG_MAX_ARTICLE_CHARS" in read(tmp_path / "long.txt")[1]["long.txt"]


def test_huge_or_deeply_nested_json_is_skipped(tmp_path, battery):
    (tmp_path / "nested.json").write_text("[" * 100_000 + "]" * 100_000)
    (tmp_path / "deep.jsonl").write_text('{"text": ' + "[" * 50_000 + "]" * 50_000 + "}\n" + json.dumps(
        {"id": "ok", "text": TEXT}) + "\n")
    articles, skipped, _ = read(tmp_path)
    assert tried(battery, "ingest: JSON nested 100,000 deep", "skipped, the good line kept",
                 f"{skipped.get('nested.json', 'kept')}; kept {[a.id for a in articles]}",
                 [a.id for a in articles] == ["ok"] and "nested too deeply" in skipped["nested.json"])


def test_a_jsonl_of_100000_lines_is_streamed(tmp_path, monkeypatch, battery):
    feed = tmp_path / "feed.jsonl"
    with open(feed, "w", encoding="utf-8") as f:
        for i in range(100_000):
            f.write(json.dumps({"id": f"n{i}", "text": f"خبر رقم {i}."}) + "\n")
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail("a .jsonl must not be read whole"))
    monkeypatch.setattr(Path, "read_text", lambda self, **kw: pytest.fail("a .jsonl must not be read whole"))
    reader = ArticleReader()
    stream = reader.read([feed])
    first = next(stream)  # the first record arrives before the rest of the file is parsed
    rest = sum(1 for _ in stream)
    assert tried(battery, "ingest: JSONL of 100,000 lines", "streamed, all read", f"{rest + 1:,} read line by line",
                 first.id == "n0" and rest == 99_999)


def test_invisible_and_direction_overriding_characters_are_stripped(tmp_path, battery):
    hostile = "خبر\u200b عن\u202e بغداد\u2066\u0007\u001b اليوم\ufeff.\u200f"
    (tmp_path / "bidi.txt").write_text(hostile, encoding="utf-8")
    (tmp_path / "nul.jsonl").write_text(json.dumps({"id": "nul", "title": "عنوان\u202e\u0000", "text": hostile + "\u0000"}))
    articles, _, _ = read(tmp_path / "bidi.txt", tmp_path / "nul.jsonl")
    assert tried(battery, "ingest: zero-width, bidi-override, control chars, NUL", "stripped",
                 "stripped" if [a.text for a in articles] == ["خبر عن بغداد اليوم."] * 2 else repr(articles[0].text),
                 [a.text for a in articles] == ["خبر عن بغداد اليوم."] * 2 and articles[1].title == "عنوان")


@pytest.mark.parametrize("given, safe", [
    ("../../etc/passwd", "____etc_passwd"), ("a/b\\c", "a_b_c"), ("..", None), ("id\x00\x1b[31m", "id_[31m"),
    ("x" * 500, None), ("عاجل 2021 - البصرة", "عاجل 2021 - البصرة"), ("004_11e11d9def2c09fb", "004_11e11d9def2c09fb")])
def test_article_ids_are_made_safe_and_reported(given, safe):
    made, changed = safe_article_id(given)
    assert changed == (made != given)
    if safe:
        assert made == safe
    assert "/" not in made and "\\" not in made and ".." not in made and len(made) <= 120
    assert made.isprintable() and not made.startswith(".")


def test_unsafe_ids_and_duplicates_in_a_batch_are_reported_and_the_last_wins(tmp_path, battery):
    feed = tmp_path / "feed.jsonl"
    feed.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in [
        {"id": "../../etc/passwd", "text": TEXT},
        {"id": "same", "text": "النص الأول عن البصرة."},
        {"id": "same", "text": "النص الثاني عن البصرة."}]) + "\n", encoding="utf-8")
    store = LocalStore(tmp_path / "index", "fake:hash")
    report = Ingestor(store, HashEmbedder(), ArabicChunker()).ingest([feed])
    assert sorted(report.added) == ["____etc_passwd", "same"]
    notes = " | ".join(w.reason for w in report.warnings)
    assert tried(battery, "ingest: id '../../etc/passwd'", "made safe, reported", "____etc_passwd, reported",
                 "made safe as '____etc_passwd'" in notes)
    assert tried(battery, "ingest: the same id twice in a batch", "the last wins, reported",
                 "last kept" if "الثاني" in store.article("same").text else "first kept",
                 "duplicate article id 'same'" in notes and "الثاني" in store.article("same").text)


def test_symlink_loops_and_unreadable_files_do_not_stop_a_batch(tmp_path, monkeypatch, battery):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "loop").symlink_to(tmp_path)  # a folder that contains itself
    (tmp_path / "self.txt").symlink_to(tmp_path / "self.txt")
    (tmp_path / "a" / "ok.txt").write_text(TEXT, encoding="utf-8")
    (tmp_path / "locked.txt").write_text(TEXT, encoding="utf-8")
    real = Path.read_bytes

    def read_bytes(self):
        if self.name == "locked.txt":
            raise PermissionError(errno.EACCES, "Permission denied")
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    articles, skipped, _ = read(tmp_path)
    assert tried(battery, "ingest: folder symlink loop + unreadable file", "batch goes on, reason given",
                 f"kept {[a.id for a in articles]}, {skipped.get('locked.txt')}",
                 [a.id for a in articles] == ["ok"] and "Permission denied" in skipped["locked.txt"])


# ---- bad input: questions ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("question, error", [
    ("", "empty"), ("  \n\t", "empty"), ("؟؟!! ...", "no words"), ("🙂🔥👍", "no words"), ("\u202e\u200b", "no words"),
    ("س" * 2001, "RAG_MAX_QUESTION_CHARS")])
def test_bad_questions_are_refused_before_any_model_runs(question, error, battery):
    with pytest.raises(BadInput, match=error) as refused:
        check_question(question, max_chars=2000)
    tried(battery, f"question: {question[:12]!r}{'…' if len(question) > 12 else ''}", f"refused ({error})",
          str(refused.value)[:50], True)


def test_nul_bytes_and_bidi_overrides_are_removed_from_a_question_and_mixed_scripts_are_kept():
    assert check_question("كم\x00 ساعة\u202e أمهلت؟") == "كم ساعة أمهلت؟"
    assert check_question("ما موقف Pentagon من العراق؟") == "ما موقف Pentagon من العراق؟"


# ---- faults: the index ------------------------------------------------------------------------------------------
def _articles(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"a{i:02d}.txt").write_text(f"الخبر رقم {i}: {TEXT}", encoding="utf-8")
    return folder


SLOW_INGEST = """
import sys, time
import rag.embed
from tests.fakes import HashEmbedder
from tests.test_ui import service  # noqa: F401 - fixture

class Slow(HashEmbedder):
    def embed_passages(self, texts, progress=False):
        time.sleep(0.4)
        return super().embed_passages(texts, progress)

rag.embed.make_embedder = lambda settings: Slow()
from rag.cli import main
sys.exit(main(["ingest", sys.argv[1]]))
"""


def test_kill_9_mid_ingest_keeps_every_committed_batch_and_a_rerun_skips_them(tmp_path, fake_models, battery):
    source = _articles(tmp_path / "src", 12)
    env = {**os.environ, "RAG_INDEX_DIR": str(tmp_path / "index"), "RAG_INGEST_COMMIT_EVERY": "2",
           "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", SLOW_INGEST, str(source)], env=env, cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    current, deadline = tmp_path / "index" / "CURRENT", time.monotonic() + 60
    while time.monotonic() < deadline:
        if current.is_file() and current.read_text().strip() >= "gen-000002":
            break
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    store = LocalStore.open(tmp_path / "index", fake_models.name)  # readable after the kill
    committed = {a.id for a in store.articles()}
    assert 4 <= len(committed) < 12 and len(committed) % 2 == 0
    os.environ["RAG_INDEX_DIR"] = str(tmp_path / "index")
    try:
        report = Ingestor.from_settings(store, fake_models, _settings(tmp_path)).ingest([source])
    finally:
        del os.environ["RAG_INDEX_DIR"]
    final = {a.id for a in LocalStore.open(tmp_path / "index", fake_models.name).articles()}
    battery.count("data lost (committed articles missing)", len(committed - final))
    assert battery.case("fault: kill -9 mid-ingest (commit every 2)", "committed batches kept, rerun skips them",
                        f"{len(committed)} kept, rerun: {len(report.unchanged)} unchanged + {len(report.added)} "
                        f"added, {len(final)}/12", set(report.unchanged) == committed and len(final) == 12)


def _settings(tmp_path):
    from rag.settings import Settings

    return Settings(index_dir=tmp_path / "index", ingest_commit_every=2)


def test_a_damaged_generation_is_passed_over_then_check_and_repair_fix_it(tmp_path, fake_models, capsys,
                                                                          monkeypatch, battery):
    monkeypatch.setenv("RAG_INDEX_DIR", str(tmp_path / "index"))
    assert main(["ingest", str(_articles(tmp_path / "one", 2))]) == 0
    assert main(["ingest", str(_articles(tmp_path / "two", 3))]) == 0  # gen 2 adds a02
    newest_segment = sorted((tmp_path / "index").glob("seg-*"))[-1]
    docstore = newest_segment / "articles.jsonl"
    docstore.write_text("".join(docstore.read_text().splitlines(keepends=True)[:-1]))  # cut at a line boundary
    store = LocalStore.open(tmp_path / "index", fake_models.name)
    assert "damaged" in store.fallback and len(store.articles()) == 2  # the last intact generation serves
    capsys.readouterr()
    assert main(["index", "check"]) == 1
    assert "does not match its checksum" in capsys.readouterr().out
    assert main(["index", "repair"]) == 0 and main(["index", "check"]) == 0
    assert LocalStore.open(tmp_path / "index", fake_models.name).fallback == ""
    assert main(["ingest", str(tmp_path / "two")]) == 0  # re-ingest restores what the damage took
    assert battery.case("fault: truncated docstore in the current generation",
                        "older generation served; check finds it; repair fixes it", "as expected",
                        len(LocalStore.open(tmp_path / "index", fake_models.name).articles()) == 3)


def test_a_full_disk_fails_the_save_cleanly_and_the_last_generation_keeps_serving(tmp_path, fake_models,
                                                                                   monkeypatch, battery):
    import numpy as np

    store = LocalStore(tmp_path / "index", fake_models.name)
    Ingestor(store, fake_models, ArabicChunker()).ingest([_articles(tmp_path / "src", 2)])
    real = np.save

    def full(path, array, *args, **kwargs):
        real(path, array, *args, **kwargs)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "save", full)
    (tmp_path / "src" / "new.txt").write_text("خبر جديد عن كربلاء.", encoding="utf-8")
    with pytest.raises(IndexWriteFailed, match="No space left on device.*previous generation"):
        Ingestor(store, fake_models, ArabicChunker()).ingest([tmp_path / "src"])
    monkeypatch.setattr(np, "save", real)
    served = LocalStore.open(tmp_path / "index", fake_models.name)
    battery.count("data lost (committed articles missing)", 2 - len(served.articles()))
    assert battery.case("fault: disk full during a save", "clear error, last generation serves",
                        f"{len(served.articles())}/2 articles served", len(served.articles()) == 2)
    assert not list((tmp_path / "index").glob(".gen-*")) and not list((tmp_path / "index").glob(".seg-*"))


def test_a_second_writer_waits_or_exits_with_a_message(tmp_path, battery):
    with write_lock(tmp_path, wait=True):
        with pytest.raises(IndexBusy, match="RAG_INGEST_WAIT_FOR_LOCK"):
            with write_lock(tmp_path, wait=False):
                pass
    battery.case("fault: two writers at once", "the second exits with a message (or waits)", "IndexBusy", True)


def test_queries_are_served_from_the_last_commit_throughout_an_ingest(tmp_path, fake_models, battery):
    from rag.retrieve import HybridRetriever

    store = LocalStore(tmp_path / "index", fake_models.name)
    Ingestor(store, fake_models, ArabicChunker()).ingest([_articles(tmp_path / "src", 2)])
    reader = HybridRetriever(LocalStore.open(tmp_path / "index", fake_models.name), fake_models)
    seen = []

    class Watching(HashEmbedder):
        def embed_passages(self, texts, progress=False):
            seen.append(reader.retrieve("جسر الموصل", k=1)[0].article_id)  # mid-ingest, before the commit
            return super().embed_passages(texts, progress)

    writer = LocalStore.open(tmp_path / "index", fake_models.name)
    Ingestor(writer, Watching(), ArabicChunker(), commit_every=1).ingest([_articles(tmp_path / "more", 4)])
    assert battery.case("fault: queries during an ingest", "served from the last commit",
                        f"{len(seen)} queries answered", seen and all(s.startswith("a0") for s in seen))


# ---- faults: the LLM endpoint -----------------------------------------------------------------------------------
from tests.test_llm import _FakeChatServer, chat_server  # noqa: E402, F401 - the fake OpenAI-compatible server

MESSAGES = [{"role": "user", "content": "x"}]


def test_a_connection_cut_mid_answer_is_a_failure_not_a_truncated_answer(chat_server, battery):  # noqa: F811
    from rag.errors import LLMUnavailable
    from rag.llm import OpenAIChat

    chat = OpenAIChat(f"{chat_server}/cut/v1", "m", max_retries=0)
    received = []
    with pytest.raises(LLMUnavailable, match="stopped mid-answer") as failed:
        for piece in chat.stream(MESSAGES):
            received.append(piece)
    battery.case("LLM: connection cut after the first tokens", "reported as failed, no answer",
                 f"{len(received)} piece(s), then: {str(failed.value)[:60]}", True)


def test_the_api_reports_a_cut_stream_as_an_error_event(service, chat_server):  # noqa: F811
    from fastapi.testclient import TestClient

    from rag.api import create_app
    from rag.llm import OpenAIChat
    from tests.test_api import sse_events

    service._llm = OpenAIChat(f"{chat_server}/cut/v1", "m", max_retries=0)
    events = sse_events(TestClient(create_app(service=service, ui=False)).post(
        "/api/ask", json={"question": "كم ساعة أمهلت عصائب أهل الحق الحكومة؟", "stream": True}).text)
    assert events[-1][0] == "error" and "answer" not in [kind for kind, _ in events]


def test_a_slow_endpoint_times_out_clearly_and_the_service_stays_responsive(service, chat_server,  # noqa: F811
                                                                            battery):
    import threading

    from rag.errors import LLMUnavailable
    from rag.llm import OpenAIChat

    service._llm = OpenAIChat(f"{chat_server}/slow/v1", "m", max_retries=0, timeout=1.0)
    outcome = {}

    def ask():
        try:
            service.ask("كم ساعة أمهلت عصائب أهل الحق الحكومة؟")
        except LLMUnavailable as exc:
            outcome["error"] = str(exc)

    worker = threading.Thread(target=ask)
    started = time.perf_counter()
    worker.start()
    time.sleep(0.2)
    hits = service.retrieve("القصف الأمريكي", k=2).hits  # while the generation waits on the slow endpoint
    during = time.perf_counter() - started
    worker.join(10)
    assert battery.case("LLM: endpoint slower than RAG_LLM_TIMEOUT", "clear timeout; retrieval still answers",
                        f"{outcome.get('error', 'no error')[:60]}; retrieval at {during:.2f} s",
                        "RAG_LLM_TIMEOUT" in outcome.get("error", "") and len(hits) == 2 and during < 1.0)


def test_429_and_5xx_are_retried_with_backoff(chat_server, monkeypatch, battery):  # noqa: F811
    from rag.llm import OpenAIChat

    calls = {"n": 0}
    original = _FakeChatServer.do_POST

    def busy_then_ok(self):
        calls["n"] += 1
        self.path = {1: "/status429/v1/chat/completions", 2: "/status500/v1/chat/completions"}.get(
            calls["n"], "/ok/v1/chat/completions")
        original(self)

    monkeypatch.setattr(_FakeChatServer, "do_POST", busy_then_ok)
    text = "".join(OpenAIChat(f"{chat_server}/ok/v1", "m", max_retries=2).stream(MESSAGES))
    assert battery.case("LLM: 429 then 500, then an answer", "retried with backoff, answered",
                        f"{calls['n']} calls, answered", text == _FakeChatServer.reply and calls["n"] == 3)


def test_garbage_from_the_model_is_never_asserted(service, battery):  # noqa: F811
    from tests.fakes import QueueLLM

    garbage = ["ﷺ###%%% [9] lorem ipsum", "<|im_end|>" * 5, "1234567 [1] [2] [3]", "", "```python\nprint(1)\n```"]
    outcomes = []
    for reply in garbage:
        service._llm = QueueLLM(reply, reply)
        try:
            answer = service.ask("كم ساعة أمهلت عصائب أهل الحق الحكومة؟")
            outcomes.append("refused" if answer.refused else "quoted" if answer.quoted else answer.answer)
        except RagError as exc:
            outcomes.append(f"error: {str(exc)[:30]}")
    asserted = [o for o in outcomes if o not in ("refused", "quoted") and not o.startswith("error")]
    battery.count("inputs tried", len(garbage))
    assert battery.case("LLM: 5 garbage replies", "refused or quoted, never asserted", ", ".join(outcomes)[:90],
                        not asserted)


def test_the_embedded_server_is_restarted_when_it_went_away(chat_server, battery):  # noqa: F811
    from rag.llm import OpenAIChat

    chat = OpenAIChat("http://127.0.0.1:9/v1", "m", max_retries=0, timeout=2)  # its process is gone
    restarts = []
    chat.reconnect = lambda: restarts.append(1) or f"{chat_server}/ok/v1"
    text = "".join(chat.stream(MESSAGES))
    assert battery.case("LLM: embedded server gone", "restarted on the next question",
                        f"{len(restarts)} restart, answered", text == _FakeChatServer.reply and restarts == [1])


def test_threads_that_first_use_the_model_together_share_one_chat_model():
    """The service's lazily started model is made once, whatever the number of threads that first need it at the
    same moment: threads that raced each started (or joined) a server of their own, and the chat that lost the race
    stopped the embedded server under the others (concurrent briefing translations lost their connection)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from rag.service import LazyChat
    from tests.fakes import QueueLLM

    made = []

    def factory():
        time.sleep(0.05)  # a server takes a while to start: the window the threads raced in
        made.append(QueueLLM(*["ok"] * 8))
        return made[-1]

    chat = LazyChat(factory)
    start = threading.Barrier(8)

    def first_use(_):
        start.wait()
        return "".join(chat.stream([{"role": "user", "content": "?"}]))

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(first_use, range(8))) == ["ok"] * 8
    assert len(made) == 1 and len(made[0].calls) == 8
