"""50 readers for 60 seconds against the live server, the fake LLM behind it (integration: the real embedder,
a minute of load). 0 failures, 0 lost requests, retrieval p95 under 200 ms while answers are generated."""

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
    battery.case("load: 50 readers × 60 s (fake LLM)", "0 errors; retrieval p95 < 200 ms",
                 f"{routes['Aggregated']['requests']} requests, {failures} errors, retrieval p95 {retrieve_p95:.0f} ms, "
                 f"ask p50 {routes['/api/ask']['p50_ms'] / 1000:.1f} s, {result['deferred']} deferred",
                 failures == 0 and retrieve_p95 < 200)
    assert failures == 0 and routes["/api/ask"]["requests"] > 0
    assert retrieve_p95 < 200
