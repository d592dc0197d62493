"""The HTTP engine against a real OpenAI-compatible server on loopback that serves the embedded model."""

from __future__ import annotations

import socket

import pytest

from openrft.engines import EngineError, SamplingParams, get_engine
from openrft.engines.http import HttpEngine

from .conftest import EUROVOC_DOMAINS, EUROVOC_PROMPT, eurovoc_response_format
from .openai_server import make_app, serve

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def test_samples_come_back_with_logprobs_and_usage(engine):
    app = make_app(engine)
    with serve(app) as base_url:
        remote = get_engine("smollm2", base_url=base_url, api_key="test-key")
        assert isinstance(remote, HttpEngine)
        results = remote.generate([QUESTION, EUROVOC_PROMPT], SamplingParams(n=2, max_tokens=8, seed=1))
    assert [len(samples) for samples in results] == [2, 2]
    for index, samples in enumerate(results):
        for sample in samples:
            assert sample.prompt_index == index and sample.error is None and sample.model == "smollm2"
            assert sample.output_text and sample.finish_reason in ("stop", "length")
            assert len(sample.logprobs) == sample.completion_tokens > 0
            assert all(lp <= 0 for lp in sample.logprobs)
    first = app.state.requests[0]
    assert first["n"] == 2 and first["max_completion_tokens"] == 8 and first["logprobs"] is True
    assert first["seed"] == 1 and "reasoning_effort" not in first


def test_response_format_and_reasoning_effort_are_passed_through(engine):
    app = make_app(engine)
    params = SamplingParams(n=2, max_tokens=110, seed=3, response_format=eurovoc_response_format(),
                            reasoning_effort="low")
    with serve(app) as base_url:
        samples = HttpEngine("smollm2", base_url=base_url, api_key="test-key").generate([EUROVOC_PROMPT], params)[0]
    assert app.state.requests[0]["response_format"] == eurovoc_response_format()
    assert app.state.requests[0]["reasoning_effort"] == "low"
    for sample in samples:
        assert sample.reasoning_text  # from message.reasoning_content
        assert sample.reasoning_tokens > 0
        if sample.finish_reason == "stop":
            assert sample.parse_error is None and set(sample.output_json["labels"]) <= set(EUROVOC_DOMAINS)


def test_a_server_that_ignores_n_is_asked_again(engine):
    app = make_app(engine, honour_n=False)
    with serve(app) as base_url:
        samples = HttpEngine("m", base_url=base_url, api_key="test-key").generate(
            [QUESTION], SamplingParams(n=3, max_tokens=4, seed=5))[0]
    assert len(samples) == 3 and all(s.error is None for s in samples)
    assert len(app.state.requests) == 3
    assert [r["seed"] for r in app.state.requests] == [5, 6, 7]  # each call draws new samples


def test_rate_limits_are_retried_and_unsupported_parameters_dropped(engine):
    app = make_app(engine, rate_limited=2, rejects=("logprobs",))
    with serve(app) as base_url:
        remote = HttpEngine("m", base_url=base_url, api_key="test-key", backoff_s=0.01)
        samples = remote.generate([QUESTION], SamplingParams(n=1, max_tokens=4))[0]
    assert samples[0].error is None and samples[0].output_text
    assert samples[0].logprobs == []  # the server does not give them
    assert remote.unsupported == {"logprobs"}
    assert len(app.state.requests) == 4  # 429, 429, 400 (logprobs), 200


def test_failures_become_error_samples_not_exceptions(engine):
    app = make_app(engine)
    with serve(app) as base_url:
        samples = HttpEngine("m", base_url=base_url, api_key="wrong-key").generate(
            [QUESTION], SamplingParams(n=2, max_tokens=4))[0]
    assert [s.finish_reason for s in samples] == ["error", "error"]
    assert "HTTP 401" in samples[0].error

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    unreachable = HttpEngine("m", base_url=f"http://127.0.0.1:{port}/v1", max_retries=1, backoff_s=0.01)
    samples = unreachable.generate([QUESTION], SamplingParams(n=1, max_tokens=4))[0]
    assert samples[0].finish_reason == "error" and "ConnectError" in samples[0].error


def test_the_http_engine_needs_a_base_url():
    with pytest.raises(EngineError, match="base_url"):
        get_engine("m", backend="http")
