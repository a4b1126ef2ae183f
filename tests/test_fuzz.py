"""The HTTP API fuzzed from its own OpenAPI schema with schemathesis (fakes, in process): whatever a client
sends, no 500, no traceback, and every error is JSON {"error": {"code", "message"}}.

Hypothesis drives schemathesis' strategies directly: schemathesis' pytest plugin does not load under pytest 9."""

import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings

from rag.api import create_app
from tests.test_ui import RoutingLLM, service  # noqa: F401 - fixtures

EXAMPLES_PER_ROUTE = 40


def check(case, seen: dict, battery) -> None:
    response = case.call()
    seen[response.status_code] = seen.get(response.status_code, 0) + 1
    battery.count("inputs tried")
    if response.status_code >= 500 or "Traceback" in response.text:
        battery.count("crashes (500s, tracebacks)")
    where = f"{case.method} {case.formatted_path} {case.body!r:.200}"
    assert response.status_code < 500, f"{where}: {response.status_code} {response.text[:300]}"
    assert "Traceback" not in response.text, where
    if response.status_code >= 400:
        error = response.json()["error"]
        assert error["code"] and error["message"], where


def test_no_server_errors_and_every_error_is_json(service, battery):  # noqa: F811
    service._llm = RoutingLLM()
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(service=service, ui=False))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 11  # every route is fuzzed, not only the easy ones
    seen: dict[int, int] = {}
    for operation in operations:
        @given(case=operation.as_strategy())
        @hypothesis_settings(max_examples=EXAMPLES_PER_ROUTE, deadline=None, database=None,
                             suppress_health_check=list(HealthCheck))
        def fuzz(case):
            check(case, seen, battery)

        fuzz()
    battery.case(f"API fuzz: {len(operations)} routes from /openapi.json", "no 5xx, JSON errors",
                 ", ".join(f"{n}× {code}" for code, n in sorted(seen.items())), max(seen) < 500)
    assert sum(seen.values()) >= 100 and any(code >= 400 for code in seen)  # it sent bad input, and some got in
    assert any(code < 300 for code in seen)
