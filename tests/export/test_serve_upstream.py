"""`openrft serve --upstream URL`: the models openrft does not know (or the ones named with --upstream-model) are
answered by an external OpenAI-compatible server through the http engine, in the API process (chat, the
playground) and in the worker processes (eval runs), which inherit the route; the other models stay local."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from openrft.engines import Sample
from openrft.service import engine_cache
from tests.engines.openai_server import make_app, serve


class EchoEngine:
    """The external server's model: answers with what it was asked."""

    def generate(self, prompts, params):
        return [[Sample(prompt_index=i, output_text=f"upstream says: {p[-1]['content']}", completion_tokens=3)
                 for _ in range(params.n)] for i, p in enumerate(prompts)]


class LocalEngine:
    def generate(self, prompts, params):
        return [[Sample(prompt_index=i, output_text="local answer") for _ in range(params.n)]
                for i, _ in enumerate(prompts)]


@pytest.fixture()
def upstream(monkeypatch):
    for name in (engine_cache.UPSTREAM_URL, engine_cache.UPSTREAM_KEY, engine_cache.UPSTREAM_MODELS):
        monkeypatch.setenv(name, "")  # restored after the test: `serve` writes the route into os.environ
    real_get_engine = engine_cache.get_engine
    monkeypatch.setattr(engine_cache, "get_engine", lambda model, base_url=None, **kw:  # local models: stubs
                        real_get_engine(model, base_url=base_url, **kw)
                        if base_url or not engine_cache.resolvable(model) else LocalEngine())
    app = make_app(EchoEngine())
    with serve(app) as url:
        yield url, app


def served_app(monkeypatch, *args: str):
    """The app `openrft serve ARGS` would run (uvicorn and the workers replaced by no-ops)."""
    import uvicorn

    from openrft.cli import app as cli
    from openrft.service import commands

    captured = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: captured.setdefault("app", app))
    monkeypatch.setattr(commands.WorkerPool, "start", lambda self: None)
    monkeypatch.setattr(commands.WorkerPool, "stop", lambda self, timeout=30.0: None)
    result = CliRunner().invoke(cli, ["serve", "--workers", "0", *args])
    assert result.exit_code == 0, result.output
    return captured["app"], result.output


def chat(client: TestClient, model: str) -> dict:
    response = client.post("/v1/chat/completions", json={"model": model, "messages": [
        {"role": "user", "content": "hello"}]})
    assert response.status_code == 200, response.text
    return response.json()


def test_unknown_models_go_upstream_and_known_ones_stay_local(home, upstream, monkeypatch):
    url, server = upstream
    app, output = served_app(monkeypatch, "--upstream", url, "--upstream-key", "test-key")
    assert f"answered by {url}" in " ".join(output.split())
    client = TestClient(app)
    answer = chat(client, "smollm2-export-q8_0.gguf")
    assert answer["choices"][0]["message"]["content"] == "upstream says: hello"
    assert server.state.requests[-1]["model"] == "smollm2-export-q8_0.gguf"
    count = len(server.state.requests)
    assert chat(client, "default")["choices"][0]["message"]["content"] == "local answer"
    assert len(server.state.requests) == count  # 'default' never reached the upstream server


def test_named_models_go_upstream_in_the_server_and_in_its_workers(home, upstream, monkeypatch):
    from openrft.engines.http import HttpEngine
    from openrft.service.commands import WorkerPool

    url, server = upstream
    app, _ = served_app(monkeypatch, "--upstream", url, "--upstream-key", "test-key", "--upstream-model", "default")
    assert chat(TestClient(app), "default")["choices"][0]["message"]["content"] == "upstream says: hello"
    assert server.state.requests[-1]["model"] == "default"
    # a worker (eval runs) starts with this environment and builds its engines with load_engine
    spawned = {}

    def popen(command, env, **kwargs):
        spawned["env"] = env
        return _Process()

    monkeypatch.setattr("subprocess.Popen", popen)
    WorkerPool(1, "sqlite://")._spawn(0)
    assert spawned["env"][engine_cache.UPSTREAM_URL] == url and spawned["env"][engine_cache.UPSTREAM_MODELS] == "default"
    assert isinstance(engine_cache.load_engine("default"), HttpEngine)
    local_dir = str(home / "models" / "SmolLM2-135M-Instruct")  # known to openrft, not named: stays local
    assert isinstance(engine_cache.load_engine(local_dir), LocalEngine)


class _Process:
    pid = 0


def test_without_upstream_an_unknown_model_is_a_404(home, upstream, monkeypatch):
    app, _ = served_app(monkeypatch)
    response = TestClient(app).post("/v1/chat/completions", json={"model": "nowhere.gguf", "messages": [
        {"role": "user", "content": "hello"}]})
    assert response.status_code == 404


def test_eval_runs_accept_a_model_only_the_upstream_server_knows(home, monkeypatch):
    from openrft.service.engine_cache import UPSTREAM_KEY, UPSTREAM_MODELS, UPSTREAM_URL, use_upstream
    from openrft.service.errors import APIError
    from openrft.service.evals import _check_model

    for name in (UPSTREAM_URL, UPSTREAM_MODELS, UPSTREAM_KEY):
        monkeypatch.setenv(name, "")  # recorded, so that the route use_upstream sets is undone after the test
    with pytest.raises(APIError, match="remote-only"):
        _check_model("remote-only")
    use_upstream("http://127.0.0.1:9/v1")
    _check_model("remote-only")  # routed to the external server: no error
