"""kill -9 of the trainer inside a chosen phase of a step, then `openrft train --resume` (issue 10).

The fault is injected with OPENRFT_FAULT=<phase>@<step> (openrft.faults): the trainer sends itself SIGKILL
in the middle of sampling, grading, the optimizer step, a checkpoint write, or the rename that replaces the
resume state. After the kill, every checkpoint under its final name is complete and loads as `openrft eval`
loads it, the resume state (or, mid-rename, its `.old` copy) is complete and matches a checkpoint; the resume
finishes, loses at most one eval interval and leaves one metrics event per step.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.training.test_train import write_job

STEPS, EVAL_INTERVAL, KILL_STEP = 3, 2, 3  # checkpoints and state at steps 2 and 3; the kill in step 3
LEFTOVER = re.compile(r".*\.(partial|old|deleted)$")


def _train(run: Path, home: Path, fault: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OPENRFT_HOME": str(home), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    env.pop("OPENRFT_FAULT", None)
    if fault:
        env["OPENRFT_FAULT"] = fault
    return subprocess.run([sys.executable, "-m", "openrft", "train", "--resume", str(run)], env=env,
                          capture_output=True, text=True, timeout=600)


def _output(proc: subprocess.CompletedProcess) -> str:
    return (proc.stdout + proc.stderr)[-4000:]


def _checkpoint_dirs(run: Path) -> list[Path]:
    """Directories under their final name (step-N); leftovers of interrupted writes are not checkpoints."""
    return sorted(p for p in (run / "checkpoints").glob("step-*") if not LEFTOVER.match(p.name))


def _assert_checkpoints_complete(run: Path, *, load: bool = True) -> list[int]:
    """Every checkpoint under its final name has its record and (`load`) loads as `openrft eval` loads a model."""
    from openrft.models import load_model
    from openrft.training import list_checkpoints

    steps = []
    for folder in _checkpoint_dirs(run):
        record = json.loads((folder / "checkpoint.json").read_text())
        assert folder.name == f"step-{record['step_number']}", folder
        assert (folder / "adapter_model.safetensors").is_file(), folder
        if load:
            model, _ = load_model(folder)
            assert model.peft_config, folder
        steps.append(record["step_number"])
    assert sorted(c["step_number"] for c in list_checkpoints(run)) == steps  # leftovers are never listed
    return steps


def _complete_state(run: Path) -> Path:
    """The resume state: `state`, or mid-rename its `.old` copy; one of the two is always complete."""
    for folder in (run / "state", run / "state.old"):
        if (folder / "trainer_state.json").is_file():
            return folder
    raise AssertionError(f"no complete state in {sorted(p.name for p in run.iterdir())}")


def _assert_state_matches_checkpoint(state_dir: Path, run: Path) -> tuple[int, dict]:
    """The state's step has a checkpoint whose adapter equals its trainable weights; returns (step, optimizer)."""
    import torch
    from safetensors.torch import load_file

    step = json.loads((state_dir / "trainer_state.json").read_text())["step"]
    adapter = load_file(run / "checkpoints" / f"step-{step}" / "adapter_model.safetensors")
    trainable = torch.load(state_dir / "trainable.pt", weights_only=True)
    assert {name.replace(".default", "") for name in trainable} == set(adapter)
    for name, value in trainable.items():
        assert torch.equal(value, adapter[name.replace(".default", "")]), name
    optimizer = torch.load(state_dir / "optimizer.pt", weights_only=True)
    assert len(optimizer["param_groups"][0]["params"]) == len(trainable)
    return step, optimizer


def _optimizer_steps(events: list[dict], up_to: int, updates_per_batch: int) -> int:
    """optimizer.step() calls the metrics of steps 1..up_to account for (none when every group had zero signal)."""
    calls = 0
    for event in events:
        if event["type"] != "metrics" or event["data"]["step"] > up_to:
            continue
        train = event["data"]["train"]
        if train["groups"] > train["zero_signal_groups"]:
            calls += updates_per_batch - train["skipped_nan"]
    return calls


def _phase_evidence(run: Path, phase: str) -> None:
    """What the disk shows right after the kill, per phase: proof that it died inside that phase."""
    names = {p.name for p in run.iterdir()} | {p.name for p in (run / "checkpoints").iterdir()}
    if phase == "checkpoint":  # the adapter written under .partial, neither the record nor the rename
        partial = run / "checkpoints" / f"step-{KILL_STEP}.partial"
        assert (partial / "adapter_model.safetensors").is_file() and not (partial / "checkpoint.json").exists()
        assert f"step-{KILL_STEP}" not in names
    elif phase == "rename":  # the old state moved aside, the new one complete but not yet in place
        assert "state" not in names and {"state.old", "state.partial"} <= names, names
    else:
        assert f"step-{KILL_STEP}" not in names and "state.old" not in names, names


def kill_in_phase_and_resume(home: Path, tmp_path: Path, phase: str) -> dict:
    from openrft.training import create_job, read_events

    run = tmp_path / "run"
    # One prompt × 2 samples of 4 tokens per step and one optimizer pass: the phases, not the learning, matter.
    create_job(write_job(tmp_path, steps=STEPS, hp={"eval_interval": EVAL_INTERVAL, "eval_samples": 1, "batch_size": 1},
                         extra={"validate_at_start": False, "max_tokens": 4, "trackers": [], "updates_per_batch": 1}),
               run_dir=run)
    timings = {}
    began = time.perf_counter()
    killed = _train(run, home, fault=f"{phase}@{KILL_STEP}")
    timings["killed_run_s"] = time.perf_counter() - began
    assert killed.returncode == -signal.SIGKILL, _output(killed)
    assert f"SIGKILL in {phase} at step {KILL_STEP}" in killed.stderr, _output(killed)
    _phase_evidence(run, phase)

    began = time.perf_counter()
    checkpointed = _assert_checkpoints_complete(run)
    state_step, optimizer = _assert_state_matches_checkpoint(_complete_state(run), run)
    assert state_step in checkpointed
    timings["checks_s"] = time.perf_counter() - began

    began = time.perf_counter()
    done = _train(run, home)
    timings["resume_s"] = time.perf_counter() - began
    assert done.returncode == 0, _output(done)
    job = json.loads((run / "job.json").read_text())
    assert job["status"] == "succeeded", job.get("error")

    events = read_events(run)
    assert [e["data"]["step"] for e in events if e["type"] == "metrics"] == list(range(1, STEPS + 1))
    resumed = [int(m.group(1)) for e in events if (m := re.match(r"Resumed from step (\d+)", e["message"]))]
    assert resumed == [state_step], [e["message"] for e in events]
    assert 0 < KILL_STEP - state_step <= EVAL_INTERVAL  # at most one eval interval of work lost
    adam_steps = {int(s["step"]) for s in optimizer["state"].values()}
    assert adam_steps == {_optimizer_steps(events, state_step, job["openrft"]["updates_per_batch"])}

    assert not [p for p in [*run.iterdir(), *(run / "checkpoints").iterdir()] if LEFTOVER.match(p.name)]
    assert _assert_checkpoints_complete(run, load=False)[-1] == STEPS
    return {"phase": phase, "resumed_from": state_step, **{k: round(v, 1) for k, v in timings.items()}}


def test_kill_while_writing_a_checkpoint_then_resume(home, tmp_path):
    """Short version (always on): killed with checkpoints/step-3 half written, before its rename."""
    print(kill_in_phase_and_resume(home, tmp_path, "checkpoint"))


@pytest.mark.slow
@pytest.mark.parametrize("phase", ["sampling", "grading", "optimizer", "checkpoint", "rename"])
def test_kill_in_each_phase_then_resume(home, tmp_path, phase):
    print(kill_in_phase_and_resume(home, tmp_path, phase))


def test_fault_spec_is_parsed_or_refused_with_the_variable_named(monkeypatch):
    from openrft import faults

    assert faults.parse("grading@12") == ("grading", 12)
    for bad in ("grading", "grading@", "grading@x", "disk@3", "@3", "sampling@-1"):
        with pytest.raises(ValueError, match=r"OPENRFT_FAULT=.*expected <phase>@<step>"):
            faults.parse(bad)
    monkeypatch.setenv("OPENRFT_FAULT", "optimizer@2")
    faults.set_step(1)
    assert not faults.armed("optimizer")
    faults.set_step(2)
    assert faults.armed("optimizer") and not faults.armed("sampling")
    monkeypatch.delenv("OPENRFT_FAULT")
    assert not faults.armed("optimizer")
    faults.set_step(0)


def test_leftovers_of_interrupted_writes_are_recovered(tmp_path):
    """A lone `.old` copy is put back, stale `.old`, `.partial` and `.deleted` directories are removed."""
    from openrft.runs import list_checkpoints
    from openrft.training.checkpoints import recover_interrupted_writes

    def folder(path: str, step: int | None = None) -> None:
        (tmp_path / path).mkdir(parents=True)
        if step is not None:
            (tmp_path / path / "checkpoint.json").write_text(json.dumps({
                "object": "fine_tuning.job.checkpoint", "id": f"ftckpt-{step}", "created_at": 1, "metrics": {},
                "fine_tuned_model_checkpoint": f"ft:default:openrft::x:ckpt-step-{step}",
                "fine_tuning_job_id": "ftjob-x", "step_number": step}))

    folder("state.old")  # killed between the two renames of save_state: `state` is missing
    folder("state.partial")
    folder("checkpoints/step-2", 2)
    folder("checkpoints/step-2.old", 2)  # stale: step-2 is in place
    folder("checkpoints/step-3.partial", 3)
    folder("checkpoints/step-1.deleted", 1)
    assert [c.step_number for c in list_checkpoints(tmp_path)] == [2]  # leftovers are never listed
    done = recover_interrupted_writes(tmp_path)
    assert "restored state from state.old" in done and len(done) == 5, done
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoints", "state"]
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["step-2"]
    assert recover_interrupted_writes(tmp_path) == []
