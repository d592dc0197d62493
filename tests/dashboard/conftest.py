"""Run directories for the dashboard tests: written in the documented format (fast), and one produced by a tiny
real training run of the embedded model (for the browser test)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rundirs import write_eval_run, write_job_run


@pytest.fixture(scope="session")
def runs_root(tmp_path_factory) -> Path:
    """runs/: a finished job and a running one (its last line half-written); evals/: two eval runs."""
    root = tmp_path_factory.mktemp("dashboard-runs")
    write_job_run(root / "runs" / "ftjob-done", steps=6, eval_interval=2, status="succeeded", seed=1)
    write_job_run(root / "runs" / "ftjob-live", steps=3, eval_interval=2, status="running", seed=2,
                  partial_last_line=True)
    write_eval_run(root / "evals" / "base", skill=0.4, seed=5, name="default")
    write_eval_run(root / "evals" / "tuned", skill=0.8, seed=6, name="ft:default:openrft:test:abc")
    return root


# A tiny real job: 4 training rows, 2 validation rows, one step (validated before and after), 8-token answers,
# a python grader rewarding answers of about 30 characters.
GRADER = {"type": "python", "name": "length_30",
          "source": "def grade(sample, item):\n    n = len(sample['output_text'])\n"
                    "    return max(0.0, 1.0 - abs(n - item['target']) / item['target'])\n"}


@pytest.fixture(scope="session")
def real_job(tmp_path_factory, embedded_model) -> Path:
    """The run directory of a tiny real training run of the embedded model (its report included)."""
    try:
        from openrft.training import create_job, run_job
    except ImportError as exc:  # the trainer or one of its parts is not there
        pytest.fail(f"openrft.training cannot be imported: {exc}")
    root = tmp_path_factory.mktemp("dashboard-real")
    topics = ["the sea", "a cat", "rain", "the moon", "bread", "a train"]
    for name, n in (("train.jsonl", 4), ("valid.jsonl", 2)):
        rows = [{"messages": [{"role": "user", "content": f"Write one short sentence about {topics[i]}."}],
                 "target": 30, "id": f"{name[0]}{i}"} for i in range(n)]
        (root / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    body = {"model": "default", "training_file": str(root / "train.jsonl"),
            "validation_file": str(root / "valid.jsonl"), "suffix": "dash", "seed": 3,
            "method": {"type": "reinforcement", "reinforcement": {
                "grader": GRADER,
                "hyperparameters": {"batch_size": 2, "n_epochs": 1, "compute_multiplier": 0.25, "eval_interval": 1,
                                    "eval_samples": 1}}},
            "openrft": {"max_tokens": 8, "max_steps": 1, "learning_rate": 1e-3}}
    run_dir = root / "runs" / "ftjob-real"
    create_job(body, run_dir=run_dir)
    job = run_job(run_dir, progress=False)
    assert job["status"] == "succeeded", job.get("error")
    return run_dir

