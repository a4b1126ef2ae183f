"""Scheduled briefings: the runner, its history, the webhook, the cron trigger (with a fake clock), the API."""

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from rag.errors import ConfigError, Conflict, NotFound
from rag.records import Briefing, Flag, Story
from rag.schedule import BriefHistory, BriefRunner, BriefScheduler, cron_trigger


def _briefing(lang: str) -> Briefing:
    return Briefing(lang=lang, title=f"briefing {lang}", date_from="2021-06-28", date_to="2021-06-28", stories=[
        Story(headline="h", summary="s [1].", article_ids=["a1"], flags=[Flag(kind="unverified_name", detail="x")])])


class Clock:
    def __init__(self, start: datetime):
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def runner(tmp_path, briefing=_briefing, **kwargs) -> BriefRunner:
    kwargs.setdefault("clock", Clock(datetime(2026, 11, 22, 6, 0, tzinfo=UTC)))
    return BriefRunner(briefing, BriefHistory(tmp_path / "briefs"), ["ar", "en"], ["md", "json"], **kwargs)


def test_a_run_stores_every_language_and_format_with_its_record(tmp_path):
    run = runner(tmp_path).run("schedule")
    assert run.status == "ok" and run.trigger == "schedule" and run.id == "20261122T060000Z"
    assert run.files == ["briefing-ar.md", "briefing-ar.json", "briefing-en.md", "briefing-en.json"]
    assert run.article_ids == ["a1"] and run.stories == 2 and run.flags == 2 and run.webhook == ""
    history = BriefHistory(tmp_path / "briefs")
    assert history.runs() == [run] and history.get(run.id) == run
    assert json.loads(history.file(run.id, "briefing-en.json").read_text())["title"] == "briefing en"
    with pytest.raises(NotFound):
        history.file(run.id, "../../etc/passwd")  # only the run's own files
    with pytest.raises(NotFound):
        history.get("../x")


def test_a_failed_run_is_recorded_with_its_error_and_the_next_tick_runs_again(tmp_path):
    calls = []

    def flaky(lang):
        calls.append(lang)
        if len(calls) == 1:
            raise RuntimeError("model server down")
        return _briefing(lang)

    clock = Clock(datetime(2026, 11, 22, 6, 0, tzinfo=UTC))
    r = runner(tmp_path, flaky, clock=clock)
    failed = r.run("schedule")
    assert failed.status == "failed" and "model server down" in failed.error and not r.running
    clock.now += timedelta(days=1)
    assert r.run("schedule").status == "ok"
    assert [x.status for x in r.history.runs()] == ["ok", "failed"]  # newest first; the failure is kept


def test_runs_never_overlap(tmp_path):
    release = threading.Event()

    def slow(lang):
        release.wait(5)
        return _briefing(lang)

    r = runner(tmp_path, slow)
    first = r.run_in_background()
    assert r.running and r.history.get(first.id).status == "running"  # a run in progress is listed as such
    with pytest.raises(Conflict):
        r.run()
    scheduler = BriefScheduler(r, cron_trigger("0 6 * * *"))
    assert scheduler.tick() is None  # a tick during a run is skipped
    release.set()
    for _ in range(100):
        if not r.running:
            break
        threading.Event().wait(0.05)
    assert r.history.get(first.id).status == "ok" and len(r.history.runs()) == 1


def test_the_cron_schedule_fires_when_it_says_and_a_wrong_one_says_how_to_write_it():
    trigger = cron_trigger("30 6 * * 1-5")  # 06:30 UTC on weekdays
    scheduler = BriefScheduler(_NullRunner(), trigger)
    friday_evening = datetime(2026, 11, 20, 18, 0, tzinfo=UTC)
    assert scheduler.next_run(friday_evening) == datetime(2026, 11, 23, 6, 30, tzinfo=UTC)  # Monday
    assert scheduler.next_run(datetime(2026, 11, 23, 6, 30, 1, tzinfo=UTC)) == datetime(2026, 11, 24, 6, 30,
                                                                                          tzinfo=UTC)
    with pytest.raises(ConfigError, match="cron syntax"):
        cron_trigger("every morning")


class _NullRunner:
    running = False

    def run(self, trigger):
        return None


class _Hook(BaseHTTPRequestHandler):
    received: list = []
    status = 200

    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.headers["Content-Type"], json.loads(body)))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def hook():
    _Hook.received, _Hook.status = [], 200
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/briefing", _Hook
    server.shutdown()


def test_the_webhook_receives_the_run_and_its_briefings_and_a_failed_delivery_is_recorded(tmp_path, hook):
    url, handler = hook
    run = runner(tmp_path, webhook=url).run()
    assert run.webhook == "sent"
    [(content_type, body)] = handler.received
    assert content_type == "application/json" and body["run"]["id"] == run.id
    assert [b["lang"] for b in body["briefings"]] == ["ar", "en"] and body["briefings"][0]["stories"]
    handler.status = 500
    clock = Clock(datetime(2026, 11, 23, 6, 0, tzinfo=UTC))
    assert runner(tmp_path, webhook=url, clock=clock).run().webhook == "failed: HTTP 500"
    unreachable = runner(tmp_path, webhook="http://127.0.0.1:9/", clock=Clock(datetime(2026, 11, 24, tzinfo=UTC)))
    delivered = unreachable.run()
    assert delivered.status == "ok" and delivered.webhook.startswith("failed:")  # the briefing stands


def test_the_api_runs_now_lists_the_run_and_serves_its_files(tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from rag.api import create_app
    from rag.service import Service
    from rag.settings import Settings

    settings = Settings(index_dir=tmp_path / "index", briefs_dir=tmp_path / "briefs", brief_langs="ar",
                        brief_formats="md,html")
    service = Service(settings)
    monkeypatch.setattr(service, "briefing", lambda lang="ar", **kw: _briefing(lang))
    with TestClient(create_app(service=service, ui=False)) as client:
        started = client.post("/api/briefs/run")
        assert started.status_code == 202 and started.json()["status"] in ("running", "ok")
        run_id = started.json()["id"]
        for _ in range(100):
            run = client.get(f"/api/briefs/{run_id}").json()
            if run["status"] != "running":
                break
            threading.Event().wait(0.05)
        assert run["status"] == "ok" and run["files"] == ["briefing-ar.md", "briefing-ar.html"]
        listing = client.get("/api/briefs").json()
        assert [r["id"] for r in listing["runs"]] == [run_id] and listing["schedule"] == ""
        page = client.get(f"/api/briefs/{run_id}/files/briefing-ar.html")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert client.get(f"/api/briefs/{run_id}/files/run.json").status_code == 404
        assert client.get("/api/briefs/nope").json()["error"]["code"] == "not_found"


def test_cron_weekday_numbers_mean_what_they_mean_in_cron():
    sunday_night = datetime(2026, 11, 22, 23, 0, tzinfo=UTC)
    assert cron_trigger("0 6 * * 0").get_next_fire_time(None, sunday_night) == datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
    assert cron_trigger("0 6 * * 7").get_next_fire_time(None, sunday_night) == datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
    assert cron_trigger("0 6 * * 6,0").get_next_fire_time(None, sunday_night) == datetime(2026, 11, 28, 6, 0,
                                                                                           tzinfo=UTC)
    assert cron_trigger("0 */2 * * *").get_next_fire_time(None, sunday_night) == datetime(2026, 11, 23, 0, 0,
                                                                                           tzinfo=UTC)
