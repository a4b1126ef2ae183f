"""50 readers for 60 seconds against the server on 127.0.0.1 (locust, headless), with the fake LLM or the
embedded model: `python -m tests.load.run [--llm fake|embedded] [--users 50] [--seconds 60]`. The index is
built from seeds/ with the real embedder in a temporary folder. Prints one row per route and the totals."""

from __future__ import annotations

import argparse
import csv
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


def run(llm: str = "fake", users: int = 50, seconds: int = 60, generation_s: float = 0.3) -> dict:
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
                 "-u", str(users), "-r", str(users), "-t", f"{seconds}s", "--host", server.url, "--csv",
                 str(prefix), "--only-summary", "--stop-timeout", "300"],
                capture_output=True, text=True, cwd=ROOT, timeout=seconds + 400)
            rows = list(csv.DictReader(open(f"{prefix}_stats.csv", encoding="utf-8")))
            deferred = next((int(line.split()[-1]) for line in done.stdout.splitlines() + done.stderr.splitlines()
                             if line.startswith("deferred")), 0)
        finally:
            server.close()
    routes = {r["Name"]: {"requests": int(r["Request Count"]), "failures": int(r["Failure Count"]),
                          "p50_ms": float(r["50%"] or 0), "p95_ms": float(r["95%"] or 0)} for r in rows}
    return {"llm": llm, "users": users, "seconds": seconds, "routes": routes, "deferred": deferred}


def print_table(result: dict) -> None:
    print(f"load: {result['users']} readers, {result['seconds']} s, LLM {result['llm']}")
    print(f"{'route':<22}{'requests':>9}{'failures':>9}{'p50 ms':>9}{'p95 ms':>9}")
    for name, r in result["routes"].items():
        print(f"{name:<22}{r['requests']:>9}{r['failures']:>9}{r['p50_ms']:>9.0f}{r['p95_ms']:>9.0f}")
    print(f"deferred asks (503 + Retry-After, retried): {result['deferred']}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--llm", choices=["fake", "embedded"], default="fake")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=60)
    args = parser.parse_args()
    print_table(run(args.llm, args.users, args.seconds))
