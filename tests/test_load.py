"""50 readers for 60 seconds against the live server, the fake LLM behind it (integration: the real embedder,
a minute of load). Gated: 0 failures, 0 lost requests, answers still served. Reported, not gated: retrieval p95
against its 200 ms target. Timing targets are measured by benchmarks, not timed tests (the house rule): on this
2-core machine the same load has given p95s minutes apart that differ by a factor of two, so a gate on it would
fail on the machine's noise, not on the code. `python -m tests.load.run` is the benchmark; what keeps searches
quick under waiting answers is tested without timing noise in tests/test_api.py (their own threads)."""

import pytest

from tests.load.run import print_table, run

pytestmark = pytest.mark.integration


def test_fifty_readers_for_a_minute(battery):
    result = run("fake", users=50, seconds=60)
    print_table(result)
    routes = result["routes"]
    failures = sum(r["failures"] for name, r in routes.items() if name != "Aggregated")
    battery.count("errors under load", failures)
    retrieve_p95 = routes["/api/retrieve"]["p95_ms"]
    battery.case("load: 50 readers × 60 s (fake LLM)", "0 errors, answers served",
                 f"{routes['Aggregated']['requests']} requests, {failures} errors, {routes['/api/ask']['requests']} "
                 f"answers, {result['deferred']} deferred" + "".join(f"; {e}" for e in result["errors"]), failures == 0 and routes["/api/ask"]["requests"] > 0)
    battery.report("load: retrieval p95 under that load (target < 200 ms)",
                   f"{retrieve_p95:.0f} ms, p50 {routes['/api/retrieve']['p50_ms']:.0f} ms; ask p50 "
                   f"{routes['/api/ask']['p50_ms'] / 1000:.1f} s")
    assert failures == 0 and routes["/api/ask"]["requests"] > 0
