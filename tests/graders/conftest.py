"""Fixtures of the grader tests: a small sandbox pool with short limits, samples in OpenAI's shape."""

from __future__ import annotations

import json

import pytest

from openrft.graders.sandbox import SandboxLimits, SandboxPool, SandboxUnavailable, check_sandbox


def make_sample(text: str = "", output_json=None, tools=None) -> dict:
    """The `sample` namespace as Sample.grader_sample() builds it (output_json parsed when given)."""
    return {"output_text": text, "output_json": output_json, "output_tools": tools or [],
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}]}


def json_sample(value) -> dict:
    return make_sample(json.dumps(value), value)


@pytest.fixture(scope="session")
def sandbox_limits() -> SandboxLimits:
    return SandboxLimits(wall_time_s=2.0, cpu_time_s=2.0, memory_bytes=1024**3, grace_s=2.0)


@pytest.fixture(scope="session")
def pool(sandbox_limits):
    """A two-worker pool shared by the sandbox tests (skips where bubblewrap cannot run)."""
    try:
        check_sandbox(sandbox_limits)
    except SandboxUnavailable as exc:
        pytest.skip(f"{exc} (scripts/setup_debian.sh installs bubblewrap)")
    with SandboxPool(workers=2, limits=sandbox_limits) as shared:
        yield shared.start()
