"""50 readers for 60 seconds against the server on 127.0.0.1 (locust, headless), with the fake LLM or the
embedded model: `python -m tests.load.run [--llm fake|embedded] [--users 50] [--seconds 60] [--nice 0,10]`. The
index is built from seeds/ with the real embedder in a temporary folder. Prints one row per route and the totals;
with several `--nice` values (the embedded model's RAG_LLM_NICE), one run each, in its own process, one after
the other, and their tables side by side."""

from __future__ import annotations

import argparse
import csv
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class PacedExtractiveLLM:
    """The extractive fake, taking as long as a short real generation would (so the queue has work)."""

    name = "fake:paced"

    def __init__(self, seconds: float):
        from tests.fakes import ExtractiveLLM

        self.inner, self.seconds = ExtractiveLLM(), seconds

    def stream(self, messages, max_tokens=None):
        time.sleep(self.seconds)
        return self.inner.stream(messages, max_tokens)


def run(llm: str = "fake", users: int = 50, seconds: int = 60, generation_s: float = 0.3,
        spawn_rate: float = 10.0) -> dict:
    from rag.api import RunningServer, create_app
    from rag.service import Service
    from rag.settings import Settings

    with tempfile.TemporaryDirectory(prefix="rag-load-") as tmp:
        settings = Settings(index_dir=Path(tmp) / "index", cache_dir=Path(tmp) / "cache")
        service = Service(settings, llm=PacedExtractiveLLM(generation_s) if llm == "fake" else None)
        service.ingest(sorted(str(p) for p in (ROOT / "seeds").glob("*.txt")))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = RunningServer(create_app(service=service, ui=False), "127.0.0.1", port).start()
        if llm == "embedded":
            service.ask("كم ساعة أمهلت عصائب أهل الحق الحكومة؟")  # start the model before the clock runs
        try:
            prefix = Path(tmp) / "stats"
            done = subprocess.run(
                [sys.executable, "-m", "locust", "-f", str(ROOT / "tests" / "load" / "locustfile.py"), "--headless",
                 "-u", str(users), "-r", str(spawn_rate), "-t", f"{seconds}s", "--host", server.url, "--csv",
                 str(prefix), "--only-summary", "--stop-timeout", "300"],
                capture_output=True, text=True, cwd=ROOT, timeout=seconds + 400)
            rows = list(csv.DictReader(open(f"{prefix}_stats.csv", encoding="utf-8")))
            # What each failure was (status and body, or the connection error): a failed run names its cause.
            errors = [f"{r['Name']}: {r['Error']} (×{r['Occurrences']})"
                      for r in csv.DictReader(open(f"{prefix}_failures.csv", encoding="utf-8"))]
            deferred = next((int(line.split()[-1]) for line in done.stdout.splitlines() + done.stderr.splitlines()
                             if line.startswith("deferred")), 0)
        finally:
            server.close()
    routes = {r["Name"]: {"requests": int(r["Request Count"]), "failures": int(r["Failure Count"]),
                          "p50_ms": float(r["50%"] or 0), "p95_ms": float(r["95%"] or 0)} for r in rows}
    return {"llm": llm, "users": users, "seconds": seconds, "spawn_rate": spawn_rate, "routes": routes,
            "deferred": deferred, "errors": errors}


def print_table(result: dict) -> None:
    print(f"load: {result['users']} readers (started {result['spawn_rate']:g} a second), {result['seconds']} s, "
          f"LLM {result['llm']}")
    print(f"{'route':<22}{'requests':>9}{'failures':>9}{'p50 ms':>9}{'p95 ms':>9}")
    for name, r in result["routes"].items():
        print(f"{name:<22}{r['requests']:>9}{r['failures']:>9}{r['p50_ms']:>9.0f}{r['p95_ms']:>9.0f}")
    print(f"deferred asks (503 + Retry-After, retried): {result['deferred']}")
    for error in result.get("errors", []):
        print(f"failure: {error}")


def run_each_nice(llm: str, users: int, seconds: int, spawn_rate: float, nices: list[int]) -> list[dict]:
    """One run per niceness, each in a fresh process (one model in memory at a time, nothing carried over)."""
    results = []
    for nice in nices:
        done = subprocess.run([sys.executable, "-m", "tests.load.run", "--llm", llm, "--users", str(users),
                               "--seconds", str(seconds), "--spawn-rate", str(spawn_rate), "--json"],
                              capture_output=True, text=True, cwd=ROOT,
                              env={**os.environ, "RAG_LLM_NICE": str(nice)}, timeout=seconds + 900)
        if done.returncode:
            raise SystemExit(f"the run at nice {nice} failed:\n{done.stderr[-2000:]}")
        results.append({**json.loads(done.stdout.splitlines()[-1]), "nice": nice})
    return results


def print_side_by_side(results: list[dict]) -> None:
    print(f"load: {results[0]['users']} readers (started {results[0]['spawn_rate']:g} a second), "
          f"{results[0]['seconds']} s, LLM {results[0]['llm']}; "
          "each cell: requests / failures / p50 ms / p95 ms")
    names = sorted({name for r in results for name in r["routes"]})
    print(f"{'route':<22}" + "".join(f"{'RAG_LLM_NICE=' + str(r['nice']):>28}" for r in results))
    for name in names:
        cells = []
        for r in results:
            row = r["routes"].get(name)
            cells.append(f"{row['requests']} / {row['failures']} / {row['p50_ms']:.0f} / {row['p95_ms']:.0f}"
                         if row else "-")
        print(f"{name:<22}" + "".join(f"{c:>28}" for c in cells))
    print(f"{'deferred asks':<22}" + "".join(f"{r['deferred']:>28}" for r in results))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--llm", choices=["fake", "embedded"], default="fake")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--spawn-rate", type=float, default=10.0,
                        help="readers started per second (50 at once measures the start-up burst, not the load)")
    parser.add_argument("--nice", help="comma-separated RAG_LLM_NICE values to run one after the other")
    parser.add_argument("--json", action="store_true", help="one JSON line (used by --nice)")
    args = parser.parse_args()
    if args.nice:
        print_side_by_side(run_each_nice(args.llm, args.users, args.seconds, args.spawn_rate,
                                         [int(v) for v in args.nice.split(",")]))
    elif args.json:
        print(json.dumps(run(args.llm, args.users, args.seconds, spawn_rate=args.spawn_rate)))
    else:
        print_table(run(args.llm, args.users, args.seconds, spawn_rate=args.spawn_rate))
