"""Real training runs of the embedded model on a tiny task: parameters change, events and checkpoints are
written in OpenAI's shapes, a killed run resumes with continuous events, and runs are deterministic."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

# A continuous reward with plenty of signal for a 135M model: answers close to 30 characters score best.
GRADER = {"type": "python", "name": "length_30",
          "source": "def grade(sample, item):\n    n = len(sample['output_text'])\n"
                    "    return max(0.0, 1.0 - abs(n - item['target']) / item['target'])\n"}


def rows(n: int) -> list[dict]:
    topics = ["the sea", "a cat", "rain", "the moon", "bread", "a train", "winter", "a river"]
    return [{"messages": [{"role": "user", "content": f"Write one short sentence about {topics[i % len(topics)]}."}],
             "target": 30, "id": f"r{i}"} for i in range(n)]


def write_job(tmp_path: Path, *, steps: int = 2, extra: dict | None = None, hp: dict | None = None) -> dict:
    for name, n in (("train.jsonl", 4), ("valid.jsonl", 2)):
        (tmp_path / name).write_text("".join(json.dumps(r) + "\n" for r in rows(n)))
    return {"model": "default", "training_file": str(tmp_path / "train.jsonl"),
            "validation_file": str(tmp_path / "valid.jsonl"), "suffix": "tiny", "seed": 7,
            "method": {"type": "reinforcement", "reinforcement": {
                "grader": GRADER,
                "hyperparameters": {"batch_size": 2, "n_epochs": 2, "compute_multiplier": 0.25, "eval_interval": 1,
                                    "eval_samples": 2, **(hp or {})}}},
            "openrft": {"max_tokens": 8, "max_steps": steps, "trackers": ["tensorboard"], "learning_rate": 1e-3,
                        **(extra or {})}}


def test_tiny_training_run_changes_the_policy_and_writes_openai_objects(home, tmp_path):
    from openrft.training import create_job, list_checkpoints, read_events, run_job

    job = create_job(write_job(tmp_path, hp={"eval_interval": 2}), run_dir=tmp_path / "run")
    assert job["status"] == "queued" and job["object"] == "fine_tuning.job"
    hp = job["method"]["reinforcement"]["hyperparameters"]
    assert hp["resolved"]["group_size"] == 2 and hp["resolved"]["total_steps"] == 2
    job = run_job(tmp_path / "run", progress=False)
    assert job["status"] == "succeeded", job.get("error")
    assert job["fine_tuned_model"].startswith("ft:default:openrft:tiny:")

    events = read_events(tmp_path / "run")
    metrics = [e for e in events if e["type"] == "metrics"]
    assert [e["data"]["step"] for e in metrics] == [0, 1, 2]  # step 0: the base model's validation
    step = metrics[1]["data"]
    assert 0.0 <= step["scores"]["train_reward_mean"] <= 1.0
    assert step["scores"]["graders"][0]["name"] == "length_30"
    assert set(step["timing"]["step"]) == {"sampling", "training", "eval", "full_iteration"}
    assert "valid_reward_mean" not in step["scores"]  # validation at steps 0 and 2 only (eval_interval 2)
    assert "valid_reward_mean" in metrics[2]["data"]["scores"]
    for key in ("loss", "kl", "clip_fraction", "entropy", "grad_norm", "zero_signal_share", "response_length_mean"):
        assert key in step["train"]
    assert "train_python_grader_runtime_error_count" in step["errors"]["graders"][0]

    ckpts = list_checkpoints(tmp_path / "run")
    assert [c["step_number"] for c in ckpts] == [2]
    assert ckpts[0]["fine_tuned_model_checkpoint"].endswith(":ckpt-step-2")
    assert (tmp_path / "run" / "evals" / "step-2" / "output_items.jsonl").is_file()
    assert any((tmp_path / "run" / "tensorboard").iterdir())

    # The adapter moved away from zero (LoRA B starts at 0) and loads back as a model.
    from safetensors.torch import load_file

    weights = load_file(tmp_path / "run" / "checkpoints" / "final" / "adapter_model.safetensors")
    assert any(t.abs().max() > 0 for name, t in weights.items() if "lora_B" in name)
    from openrft.models import load_model

    model, _ = load_model(job["fine_tuned_model"])
    assert model.peft_config


def test_same_seed_same_run(home, tmp_path):
    from openrft.training import create_job, read_events, run_job

    results = []
    for name in ("a", "b"):
        create_job(write_job(tmp_path, steps=1, extra={"validate_at_start": False}), run_dir=tmp_path / name)
        run_job(tmp_path / name, progress=False)
        step = [e for e in read_events(tmp_path / name) if e["type"] == "metrics"][0]["data"]
        results.append((step["scores"]["train_reward_mean"], step["train"]["loss"], step["valid"]["reward_mean"]))
    assert results[0] == results[1]


def test_grader_errors_beyond_the_share_fail_the_job(home, tmp_path):
    from openrft.training import create_job, run_job

    body = write_job(tmp_path, steps=1, extra={"validate_at_start": False})
    body["method"]["reinforcement"]["grader"] = {"type": "python", "name": "broken",
                                                 "source": "def grade(sample, item):\n    return 1 / 0\n"}
    create_job(body, run_dir=tmp_path / "run")
    job = run_job(tmp_path / "run", progress=False)
    assert job["status"] == "failed"
    assert "max_grader_error_share" in job["error"]["message"]


def test_missing_grader_field_is_refused_before_any_model_is_loaded(tmp_path):
    from openrft.spec import JobSpecError
    from openrft.training import create_job

    body = write_job(tmp_path)
    body["method"]["reinforcement"]["grader"] = {"type": "string_check", "name": "g", "input": "{{ item.nothere }}",
                                                 "reference": "x", "operation": "eq"}
    with pytest.raises(JobSpecError, match=r"train.jsonl:1: field 'nothere'"):
        create_job(body, run_dir=tmp_path / "run")


def test_kill_and_resume_keeps_events_continuous(home, tmp_path):
    """kill -9 the training process after its first checkpoint; `--resume` finishes with one event per step."""
    from openrft.training import create_job, read_events

    create_job(write_job(tmp_path, steps=3, extra={"validate_at_start": False}), run_dir=tmp_path / "run")
    env = {**os.environ, "OPENRFT_HOME": str(home)}
    log = (tmp_path / "first.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "openrft", "train", "--resume", str(tmp_path / "run")], env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    state = tmp_path / "run" / "state" / "trainer_state.json"
    deadline = time.time() + 900
    while time.time() < deadline and proc.poll() is None and not (
            state.exists() and json.loads(state.read_text())["step"] >= 1):
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert state.exists(), "no state was saved before the kill:\n" + (tmp_path / "first.log").read_text()[-3000:]
    done = subprocess.run([sys.executable, "-m", "openrft", "train", "--resume", str(tmp_path / "run")], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    job = json.loads((tmp_path / "run" / "job.json").read_text())
    assert job["status"] == "succeeded"
    steps = [e["data"]["step"] for e in read_events(tmp_path / "run") if e["type"] == "metrics"]
    assert steps == [1, 2, 3]
    assert any("Resumed from step" in e["message"] for e in read_events(tmp_path / "run"))


def test_baselines_take_their_label_statistics_from_the_whole_training_file(home, tmp_path):
    """`max_train_rows` trims what the policy trains on (a compute budget); the most-frequent baseline must still
    see the training file's real label frequencies, or its strength would depend on the budget."""
    from openrft.data.splits import group_subset
    from openrft.training import create_job, run_job

    body = write_job(tmp_path, steps=1, extra={"max_train_rows": 2})
    train = rows(5)
    kept = {r["id"] for r in group_subset(train, 2, body["seed"], body["openrft"].get("group_key"), any_member=True)}
    for row in train:  # the 2 rows the run trains on say "budget"; the other 3 say "whole"
        row["labels"] = ["budget"] if row["id"] in kept else ["whole"]
    valid = [{**r, "labels": ["whole"]} for r in rows(2)]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in train))
    (tmp_path / "valid.jsonl").write_text("".join(json.dumps(r) + "\n" for r in valid))
    create_job(body, run_dir=tmp_path / "run")
    assert run_job(tmp_path / "run", progress=False)["status"] == "succeeded"
    summary = json.loads((tmp_path / "run" / "evals" / "step-0" / "summary.json").read_text())
    assert summary["baselines"]["most_frequent"]["example"] == ["whole"]
