"""Fault injection for the kill -9 tests: the trainer sends itself SIGKILL inside a chosen phase of a chosen step.

    OPENRFT_FAULT=<phase>@<step>        e.g. OPENRFT_FAULT=checkpoint@3 openrft train --resume RUN

`step` is the trainer's step number (1..total_steps). Phases, in the order a step runs them:

    sampling    generating the step's rollouts: after 3 forward passes of the policy (the prompt and two
                decoded tokens); an engine without a torch `model` dies when its generate call returns
    grading     grading the step's first batch of rollouts: half of its samples graded by the first grader
    optimizer   after backward and gradient clipping, before optimizer.step()
    checkpoint  write_checkpoint: the adapter and tokenizer in checkpoints/step-N.partial, before checkpoint.json
                and the rename into place
    rename      replacing an existing directory (save_state at an eval step after the first): the old copy
                moved to `.old`, the new one not yet renamed into place

The hooks are called from openrft.training.loop, openrft.training.checkpoints and openrft.evals.rollout (this
module sits outside openrft.training, which imports openrft.evals, so that the rollout path can import it).
Unset (always, outside these tests) each hook is one environment lookup. The loop tells this module which
step it is on (`set_step`), so the shared rollout path needs no step argument.
"""

from __future__ import annotations

import os
import signal
import sys
from contextlib import contextmanager, nullcontext

ENV = "OPENRFT_FAULT"
PHASES = ("sampling", "grading", "optimizer", "checkpoint", "rename")
SAMPLING_FORWARDS = 3  # the prompt's forward pass and two decoded tokens

_step = 0


def set_step(step: int) -> None:
    """Record the trainer's current step (called by the loop at the start of each step)."""
    global _step
    _step = step


def parse(spec: str) -> tuple[str, int]:
    """`phase@step` -> (phase, step); anything else is a ValueError naming the variable and what it expects."""
    phase, at, step = spec.strip().partition("@")
    if phase not in PHASES or not at or not step.isdigit():
        raise ValueError(f"{ENV}={spec!r}: expected <phase>@<step> with phase one of {', '.join(PHASES)} "
                         "and step a non-negative integer")
    return phase, int(step)


def armed(phase: str) -> bool:
    """True when OPENRFT_FAULT names this phase at the current step."""
    spec = os.environ.get(ENV)
    if not spec:
        return False
    return parse(spec) == (phase, _step)


def maybe_fail(phase: str) -> None:
    """SIGKILL this process if OPENRFT_FAULT names `phase` at the current step."""
    if armed(phase):
        kill(phase)


def kill(phase: str) -> None:
    """Say where, then die as `kill -9` would: no exception handler, `finally` or atexit runs."""
    sys.stderr.write(f"openrft: {ENV}: SIGKILL in {phase} at step {_step}\n")
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def during_sampling(engine):
    """Context around one generate call: under sampling@N, dies after SAMPLING_FORWARDS forward passes of the
    engine's torch model (mid-generation), or when the call returns if it made fewer or has no model."""
    if not armed("sampling"):
        return nullcontext()
    return _kill_mid_generation(getattr(engine, "model", None))


@contextmanager
def _kill_mid_generation(model):
    calls = 0

    def count(module, args, output):  # noqa: ARG001 (torch forward-hook signature)
        nonlocal calls
        calls += 1
        if calls >= SAMPLING_FORWARDS:
            kill("sampling")

    handle = model.register_forward_hook(count) if hasattr(model, "register_forward_hook") else None
    try:
        yield
    finally:
        if handle is not None:
            handle.remove()
    kill("sampling")


def maybe_fail_grading(graders: list, pairs: list) -> None:
    """Under grading@N: grade the first half of `pairs` with the first grader (sandbox workers running), then die."""
    if armed("grading") and graders:
        graders[0].grade_many(pairs[:max(1, len(pairs) // 2)])
        kill("grading")
