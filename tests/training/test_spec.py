"""The job spec: OpenAI's body accepted unchanged, "auto" resolved by documented rules, bad input named."""

import json
from pathlib import Path

import pytest

from openrft.spec import JobSpecError, parse_job
from openrft.training import hyperparams

GRADER = {"type": "string_check", "name": "g", "input": "{{ sample.output_text }}", "reference": "{{ item.answer }}",
          "operation": "eq"}


def body(**hp):
    return {"model": "default", "training_file": "t.jsonl", "validation_file": "v.jsonl",
            "method": {"type": "reinforcement", "reinforcement": {"grader": GRADER, "hyperparameters": hp}}}


def test_openai_body_is_accepted_and_auto_resolved():
    spec = parse_job(body(reasoning_effort="medium"))
    res = hyperparams.resolve(spec, n_train=100)
    assert res["batch_size"] == 6  # clamp(100 // 16, 2, 16)
    assert res["n_epochs"] == 1  # clamp(ceil(64 / 100), 1, 10)
    assert res["eval_samples"] == 3
    assert res["resolved"]["group_size"] == 8
    assert res["resolved"]["total_steps"] == 17
    assert res["resolved"]["rules"]["batch_size"] == "clamp(n_train // 16, 2, 16)"
    assert res["reasoning_effort"] == "medium"


def test_given_values_are_kept():
    spec = parse_job(body(batch_size=3, n_epochs=2, compute_multiplier=0.5, eval_interval=2))
    res = hyperparams.resolve(spec, n_train=10)
    assert (res["batch_size"], res["n_epochs"], res["resolved"]["group_size"], res["eval_interval"]) == (3, 2, 4, 2)
    assert res["resolved"]["rules"]["batch_size"] == "given"


@pytest.mark.parametrize("hp, field", [({"batch_size": 0}, "batch_size"), ({"n_epochs": 99}, "n_epochs"),
                                       ({"compute_multiplier": 11}, "compute_multiplier"),
                                       ({"learning_rate": 1}, "learning_rate")])
def test_bad_hyperparameters_name_the_field(hp, field):
    with pytest.raises(JobSpecError, match=field):
        parse_job(body(**hp))


def test_unknown_extension_key_is_refused(tmp_path):
    b = body()
    b["openrft"] = {"lora_rnak": 8}
    path = tmp_path / "job.json"
    path.write_text(json.dumps(b))
    with pytest.raises(JobSpecError, match=r"job.json.*openrft.lora_rnak"):
        parse_job(path)


def test_yaml_job_reads_grader_file_and_relative_paths(tmp_path):
    (tmp_path / "g.json").write_text(json.dumps(GRADER))
    (tmp_path / "job.yaml").write_text("model: default\ntraining_file: data/t.jsonl\n"
                                       "method:\n  type: reinforcement\n  reinforcement:\n    grader: g.json\n")
    spec = parse_job(tmp_path / "job.yaml")
    assert spec.method.reinforcement.grader == GRADER
    assert spec.training_file == str((tmp_path / "data" / "t.jsonl").resolve())


@pytest.mark.parametrize("name", ["job.yaml", "job_long.yaml", "job_full.yaml"])
def test_the_demo_job_files_are_valid(name):
    """`openrft demo` (quick), `--long` and `--full`: OpenAI's body plus the openrft block, all accepted."""
    spec = parse_job(Path(__file__).resolve().parents[2] / "examples" / "eurovoc" / name)
    assert spec.method.type == "reinforcement" and spec.model == "default"


def test_vllm_rollouts_are_refused_rather_than_ignored():
    """Training samples with the transformers engine; a job asking for vLLM rollouts is told so at create time."""
    from openrft.spec import JobSpecError, parse_job

    with pytest.raises(JobSpecError, match="openrft.engine"):
        parse_job({**body(), "openrft": {"engine": "vllm"}})
