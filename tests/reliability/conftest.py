"""Fixtures of the reliability tests: an API client on a private data directory, the fuzz helper, case totals."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from tests.reliability.cases import CASES

KEY = "sk-reliability-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
FAST_EXAMPLES = 60  # per property in the default suite (the folder stays well under two minutes)
SLOW_EXAMPLES = 1500  # per property in the `slow` variants


def fuzz(*strategies, fast: int = FAST_EXAMPLES, slow: int = SLOW_EXAMPLES):
    """Turn `check(args...)` into two hypothesis tests: (default example count, `slow`-marked larger count).

    Usage: `test_x, test_x_slow = fuzz(strategy)(check_x)`. Deadlines are off (the machine is shared and
    slow); hangs are caught by `no_hang` inside the checks instead.
    """

    def make(check):
        def variant(examples: int):
            return settings(max_examples=examples, deadline=None, database=None,
                            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                                   HealthCheck.data_too_large, HealthCheck.large_base_example],
                            )(given(*strategies)(check))

        return variant(fast), pytest.mark.slow(variant(slow))

    return make


def route_table(app) -> list[tuple[str, str]]:
    """Every (method, path) the app serves, including routers it includes (FastAPI nests them)."""
    found: set[tuple[str, str]] = set()

    def walk(routes, prefix: str = "") -> None:
        for route in routes:
            if getattr(route, "path", None) is not None and getattr(route, "methods", None):
                found.update((method, prefix + route.path) for method in route.methods if method != "HEAD")
            elif hasattr(route, "effective_route_contexts"):  # FastAPI >= 0.165 keeps included routers whole
                contexts = route.effective_route_contexts
                for context in (contexts() if callable(contexts) else contexts):
                    found.update((m, context.path) for m in (context.methods or ()) if m != "HEAD")
            elif hasattr(route, "routes"):  # a mounted sub-application or router
                walk(route.routes, prefix + getattr(route, "path", ""))

    walk(app.routes)
    return sorted(found, key=lambda pair: (pair[1], pair[0]))


@pytest.fixture()
def data_home(tmp_path, monkeypatch) -> Path:
    """A private data directory and a small sandbox pool (these tests load no model)."""
    home = tmp_path / "home"
    monkeypatch.setenv("OPENRFT_HOME", str(home))
    monkeypatch.delenv("OPENRFT_DATABASE_URL", raising=False)
    monkeypatch.setenv("OPENRFT_SANDBOX_WORKERS", "2")
    return home


@pytest.fixture()
def app(data_home):
    from openrft.service.app import create_app
    from openrft.service.store import Store

    return create_app(Store(), api_key=KEY)


@pytest.fixture()
def client(app):
    from fastapi.testclient import TestClient

    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def assert_openai_error(response, *statuses: int) -> dict:
    """The response is a 4xx (one of `statuses` when given) carrying OpenAI's error object."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:500])
    if statuses:
        assert response.status_code in statuses, (response.status_code, response.text[:500])
    error = response.json()["error"]
    assert {"message", "type", "param", "code"} <= set(error), error
    assert isinstance(error["message"], str) and error["message"]
    return error


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not CASES:
        return
    total = sum(CASES.values())
    terminalreporter.write_line(f"reliability: {total} generated cases run: "
                                + ", ".join(f"{name} {n}" for name, n in sorted(CASES.items())))
    target = os.environ.get("OPENRFT_CASES_FILE")
    if target:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        Path(target).write_text(json.dumps({"total": total, "by_parser": dict(sorted(CASES.items()))}, indent=2) + "\n")
