"""Briefings on a schedule, with a history: each run briefs the latest day in the configured languages and
formats, stores the files and a `BriefRun` record under `RAG_BRIEFS_DIR/<run id>/`, and, when it succeeds,
posts the run and its briefings to `RAG_BRIEF_WEBHOOK`. APScheduler fires the runs inside the server; a run
never overlaps another (a tick that finds one running is skipped), and a failed run is recorded with its
error and tried again at the next tick."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from rag.errors import ConfigError, Conflict, NotFound, RagError
from rag.files import write_text_atomic
from rag.records import Briefing, BriefRun

log = logging.getLogger("rag.schedule")
FORMATS = ("md", "html", "json")
_RUN_ID = re.compile(r"^\d{8}T\d{6}Z(?:-\d+)?$")


def _now() -> datetime:
    return datetime.now(UTC)


def parse_list(value: str, allowed: tuple[str, ...], name: str) -> list[str]:
    items = [x.strip() for x in value.split(",") if x.strip()]
    wrong = [x for x in items if x not in allowed]
    if not items or wrong:
        raise ConfigError(f"{name} must list some of {', '.join(allowed)} (comma-separated); got {value!r}")
    return list(dict.fromkeys(items))


_CRON_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def cron_trigger(expression: str):
    """An APScheduler trigger from five-field cron syntax, in UTC; a clear error for anything else. Weekday
    numbers are cron's (0 or 7 = Sunday): APScheduler 3 counts from Monday, so "1-5" would otherwise fire
    Tuesday to Saturday; they are passed on as names."""
    from apscheduler.triggers.cron import CronTrigger

    fields = expression.split()
    try:
        if len(fields) != 5:
            raise ValueError(f"five fields expected, got {len(fields)}")
        weekday = re.sub(r"(?<![/\w])[0-7](?!\w)", lambda m: _CRON_DAYS[int(m.group())], fields[4])
        return CronTrigger(minute=fields[0], hour=fields[1], day=fields[2], month=fields[3], day_of_week=weekday,
                           timezone=UTC)
    except ValueError as exc:
        raise ConfigError(f"RAG_BRIEF_SCHEDULE {expression!r} is not cron syntax (minute hour day month weekday, "
                          f"e.g. '0 6 * * *' for 06:00 UTC daily): {exc}") from exc


class BriefHistory:
    """Runs on disk: one folder per run with `run.json` and the briefing files, each written atomically."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def new_id(self, now: datetime) -> str:
        base = now.strftime("%Y%m%dT%H%M%SZ")
        run_id, n = base, 1
        while (self.folder / run_id).exists():
            n += 1
            run_id = f"{base}-{n}"
        return run_id

    def save(self, run: BriefRun) -> None:
        write_text_atomic(self.folder / run.id / "run.json", run.model_dump_json(indent=1))

    def write(self, run: BriefRun, name: str, text: str) -> None:
        write_text_atomic(self.folder / run.id / name, text)

    def runs(self, limit: int = 50) -> list[BriefRun]:
        """Newest first; a damaged record is skipped, never fatal."""
        out = []
        for path in sorted(self.folder.glob("*/run.json"), reverse=True):
            try:
                out.append(BriefRun.model_validate_json(path.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                log.warning("skipping unreadable briefing run %s", path)
            if len(out) >= limit:
                break
        return out

    def get(self, run_id: str) -> BriefRun:
        path = self.folder / run_id / "run.json"
        if not _RUN_ID.match(run_id) or not path.is_file():
            raise NotFound(f"no briefing run {run_id!r}: GET /api/briefs lists them")
        return BriefRun.model_validate_json(path.read_text(encoding="utf-8"))

    def file(self, run_id: str, name: str) -> Path:
        run = self.get(run_id)
        if name not in run.files:  # only the run's own files: never a path from the request
            raise NotFound(f"run {run_id} has no file {name!r}; it has {', '.join(run.files) or 'none'}")
        return self.folder / run_id / name


class BriefRunner:
    """Makes one run at a time. `briefing(lang)` is the service's briefing of the latest day."""

    def __init__(self, briefing: Callable[[str], Briefing], history: BriefHistory, langs: list[str],
                 formats: list[str], webhook: str = "", post: Callable | None = None,
                 clock: Callable[[], datetime] = _now):
        self.briefing, self.history, self.langs, self.formats = briefing, history, langs, formats
        self.webhook, self.clock = webhook, clock
        self.post = post or _post_json
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, service, settings) -> BriefRunner:
        return cls(lambda lang: service.briefing(lang=lang), BriefHistory(settings.briefs_dir),
                   parse_list(settings.brief_langs, ("ar", "en"), "RAG_BRIEF_LANGS"),
                   parse_list(settings.brief_formats, FORMATS, "RAG_BRIEF_FORMATS"), settings.brief_webhook)

    @property
    def running(self) -> bool:
        return self._lock.locked()

    def begin(self, trigger: str) -> BriefRun:
        """Claims the one run slot and records the run as running; Conflict when a run is in progress."""
        if not self._lock.acquire(blocking=False):
            raise Conflict("a briefing run is already in progress: wait for it (GET /api/briefs shows it)")
        try:
            run = BriefRun(id=self.history.new_id(self.clock()), started=self.clock().isoformat(timespec="seconds"),
                           trigger=trigger, langs=self.langs)
            self.history.save(run)
        except BaseException:
            self._lock.release()
            raise
        return run

    def finish(self, run: BriefRun) -> BriefRun:
        """Makes the briefings of a begun run, stores them, delivers them, and releases the slot."""
        started = time.perf_counter()
        briefings: list[Briefing] = []
        try:
            from rag.brief import QUIET_FLAGS, render

            for lang in self.langs:
                briefing = self.briefing(lang)
                briefings.append(briefing)
                for fmt in self.formats:
                    name = f"briefing-{lang}.{fmt}"
                    self.history.write(run, name, render(briefing, fmt))
                    run.files.append(name)
            run.article_ids = sorted({a for b in briefings for s in b.stories for a in s.article_ids})
            run.stories = sum(len(b.stories) for b in briefings)
            run.flags = sum(1 for b in briefings for s in b.stories for f in s.flags
                            if f.kind not in QUIET_FLAGS)
            run.status = "ok"
        except Exception as exc:  # a failed run is recorded, never lost, and the schedule goes on
            run.status = "failed"
            run.error = str(exc) if isinstance(exc, RagError) else f"{type(exc).__name__}: {exc}"
            log.warning("briefing run %s failed: %s", run.id, run.error)
        finally:
            run.seconds = round(time.perf_counter() - started, 1)
            run.finished = self.clock().isoformat(timespec="seconds")
            if run.status == "ok" and self.webhook:
                run.webhook = self._deliver(run, briefings)
            try:
                self.history.save(run)
            finally:
                self._lock.release()
        return run

    def run(self, trigger: str = "manual") -> BriefRun:
        return self.finish(self.begin(trigger))

    def run_in_background(self, trigger: str = "manual") -> BriefRun:
        """Begins a run and finishes it on a thread; returns the running record at once."""
        run = self.begin(trigger)
        threading.Thread(target=self.finish, args=(run,), name=f"brief-run-{run.id}", daemon=True).start()
        return run

    def _deliver(self, run: BriefRun, briefings: list[Briefing]) -> str:
        body = {"run": run.model_dump(mode="json"), "briefings": [b.model_dump(mode="json") for b in briefings]}
        try:
            status = self.post(self.webhook, body)
        except Exception as exc:  # delivery is best effort: the run and its files stand
            return f"failed: {type(exc).__name__}: {exc}"[:300]
        return "sent" if 200 <= status < 300 else f"failed: HTTP {status}"


def _post_json(url: str, body: dict) -> int:
    import httpx

    response = httpx.post(url, content=json.dumps(body, ensure_ascii=False).encode(),
                          headers={"Content-Type": "application/json"}, timeout=15.0)
    return response.status_code


class BriefScheduler:
    """Fires `runner.run("schedule")` at each tick of the trigger (APScheduler, in a background thread). A tick
    that finds a run in progress is skipped; ticks missed while the server was down are not replayed."""

    def __init__(self, runner: BriefRunner, trigger):
        from apscheduler.schedulers.background import BackgroundScheduler

        self.runner, self.trigger = runner, trigger
        self.scheduler = BackgroundScheduler(timezone=UTC)
        self.scheduler.add_job(self.tick, trigger, id="briefing", max_instances=1, coalesce=True,
                               misfire_grace_time=300)

    def tick(self) -> BriefRun | None:
        try:
            return self.runner.run("schedule")
        except Conflict:
            log.info("scheduled briefing skipped: a run is in progress")
            return None

    def next_run(self, now: datetime | None = None) -> datetime | None:
        return self.trigger.get_next_fire_time(None, now or _now())

    def start(self) -> None:
        self.scheduler.start()

    def shutdown(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
