"""The doctor's timed training unit, and `openrft doctor` end to end with the embedded model on tiny jobs
(a handful of rows, a tiny max_tokens) through the CLI, exit codes included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

LENGTH_GRADER = {"type": "python", "name": "length_20",
                 "source": "def grade(sample, item):\n    n = len(sample['output_text'])\n"
                           "    return max(0.0, 1.0 - abs(n - item['target']) / item['target'])\n"}
ALWAYS_FAILS = {"type": "python", "name": "broken", "source": "def grade(sample, item):\n    return 1 / 0\n"}


SENTENCE_FORMAT = {"type": "json_schema", "json_schema": {"name": "sentence", "strict": True, "schema": {
    "type": "object", "properties": {"sentence": {"type": "string"}}, "required": ["sentence"],
    "additionalProperties": False}}}


def write_job(tmp_path: Path, grader: dict, *, rows: list[dict] | None = None,
              response_format: dict | None = None) -> Path:
    topics = ["the sea", "a cat", "rain", "the moon", "bread", "a train"]
    rows = rows or [{"messages": [{"role": "user", "content": f"Write one short sentence about {t}."}], "target": 20,
                     "id": f"r{i}"} for i, t in enumerate(topics)]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:4]))
    (tmp_path / "valid.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[4:]))
    job = {"model": "default", "training_file": "train.jsonl", "validation_file": "valid.jsonl", "seed": 3,
           "method": {"type": "reinforcement", "reinforcement": {
               "grader": grader, "response_format": response_format,
               "hyperparameters": {"batch_size": 2, "n_epochs": 2, "compute_multiplier": 0.25, "eval_interval": 2,
                                   "eval_samples": 2}}},
           "openrft": {"max_tokens": 6}}
    path = tmp_path / "job.json"
    path.write_text(json.dumps(job))
    return path


def doctor(*args: str):
    from openrft.cli import app

    return CliRunner().invoke(app, ["doctor", *args])


def test_a_training_unit_is_timed_with_the_trainers_loss_and_optimizer():
    """On a tiny Llama (the same code path as the embedded model, in a fraction of the time)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from openrft.doctor.estimate import time_training
    from openrft.models import add_lora

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=256, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=2))
    model = add_lora(model, rank=4, alpha=8, dropout=0.0, target_modules=["q_proj", "v_proj"])
    prompt, completions = list(range(5, 25)), [[30, 31, 32], [40, 41, 42, 43, 44], [50]]
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    timed = time_training(model, [(prompt, completions)], temperature=1.0, learning_rate=1e-2)
    assert timed["group_s"] > 0 and timed["optimizer_s"] > 0 and len(timed["passes_s"]) == 2
    # the optimizer step really ran on the LoRA weights (B starts at zero and moves)
    assert any(not bool((p == before[n]).all()) for n, p in model.named_parameters() if p.requires_grad)
    assert not model.training  # left in eval mode for the sampler
    with pytest.raises(ValueError, match="no sampled answer"):
        time_training(model, [(prompt, [[]])], temperature=1.0, learning_rate=1e-3)


def test_doctor_reports_every_check_and_the_estimate(home, tmp_path):
    result = doctor(str(write_job(tmp_path, LENGTH_GRADER, response_format=SENTENCE_FORMAT)), "--rows", "3", "--json")
    report = json.loads(result.stdout)
    names = [c["check"] for c in report["checks"]]
    assert names == ["data", "missing_fields", "label_balance", "baseline_reward", "headroom", "zero_signal",
                     "grader_continuity", "grader_errors", "parse_errors", "estimate"]
    assert all(c["verdict"] in ("ok", "warn", "stop") and c["reason"] for c in report["checks"])
    assert result.exit_code == (1 if report["verdict"] == "stop" else 0)
    assert report["rows"] == 3 and report["group_size"] == 2 and report["max_tokens"] == 6
    est = report["estimate"]
    assert est["total_steps"] == 4 and est["validations"] == 3  # steps 2, 4 and the base model at step 0
    assert est["per_step_s"]["sampling"] > 0 and est["per_step_s"]["training"] > 0 and est["total_s"] > 0
    assert 0 < est["tokens"]["trained"] <= 4 * 2 * 2 * 6
    assert report["sampled"]["tokens"]["completion_mean"] <= 6
    parse = next(c for c in report["checks"] if c["check"] == "parse_errors")["value"]
    assert parse["truncated"] > 0.5  # 6 tokens cannot hold a JSON sentence: the doctor sees it
    assert parse["with_response_format"] >= parse["truncated"] and parse["without_response_format"] is not None
    assert set(report["phases_s"]) == {"load", "sampling", "sampling_without_format", "training"}


@pytest.mark.slow  # the failing grader itself is covered fast in test_checks; this adds the model and the CLI
def test_doctor_stops_a_job_whose_grader_always_fails(home, tmp_path):
    result = doctor(str(write_job(tmp_path, ALWAYS_FAILS)), "--rows", "2")
    assert result.exit_code == 1
    assert "grader_errors" in result.stdout and "stop" in result.stdout and "ZeroDivisionError" in result.stdout


def test_doctor_stops_before_sampling_when_items_miss_a_grader_field(tmp_path):
    rows = [{"messages": [{"role": "user", "content": f"Say {i}."}], "id": f"r{i}", "target": 20} for i in range(6)]
    del rows[2]["target"]
    result = doctor(str(write_job(tmp_path, LENGTH_GRADER, rows=rows)), "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    missing = next(c for c in report["checks"] if c["check"] == "missing_fields")
    assert missing["verdict"] == "stop" and missing["value"] == {"target": 1} and "train.jsonl:3" in missing["reason"]
    assert report["estimate"] is None  # nothing was sampled


def test_doctor_names_a_bad_job_file(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text("model: default\nmethod: {type: reinforcement}\n")
    result = doctor(str(path))
    assert result.exit_code == 2 and "job.yaml" in result.output
