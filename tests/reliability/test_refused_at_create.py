"""Issue 20's door items for jobs and eval runs: out-of-range `openrft` settings, an unknown task or task
option are refused when the job is created (HTTP 400 naming the field, `openrft train` exit 2), nothing is
queued; a model that does not resolve gets one message whatever the server holds at that path; jobs and eval
runs grade as one caller each of the sandbox pool."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.reliability.conftest import AUTH, assert_openai_error

GRADER = {"type": "string_check", "name": "s", "input": "{{ sample.output_text }}", "reference": "{{ item.answer }}",
          "operation": "eq"}
ROW = {"messages": [{"role": "user", "content": "Say a."}], "answer": "a"}

OUT_OF_RANGE = [
    ("prompts_per_generate", -1), ("prompts_per_generate", 0), ("lora_rank", 0), ("lora_rank", -16),
    ("lora_dropout", 1.5), ("max_tokens", 0), ("max_tokens", 10**9), ("temperature", -1), ("temperature", 1e9),
    ("top_p", 0), ("top_p", 2), ("learning_rate", -1e-4), ("learning_rate", 0), ("updates_per_batch", 0),
    ("clip_epsilon", -0.2), ("kl_coef", -1), ("max_grad_norm", 0), ("weight_decay", -0.1),
    ("max_grader_error_share", 2), ("max_steps", -1), ("max_train_rows", -5), ("keep_checkpoints", -1),
    ("temperature", float("nan")), ("max_grad_norm", float("nan")),
]


def job_body(client, **openrft) -> dict:
    uploaded = client.post("/v1/files", headers=AUTH, files={"file": ("t.jsonl", json.dumps(ROW).encode() + b"\n")},
                           data={"purpose": "fine-tune"})
    assert uploaded.status_code == 200, uploaded.text
    return {"model": "default", "training_file": uploaded.json()["id"],
            "method": {"type": "reinforcement", "reinforcement": {"grader": GRADER}}, "openrft": openrft}


def listed_jobs(client) -> list:
    return client.get("/v1/fine_tuning/jobs", headers=AUTH).json()["data"]


@pytest.mark.parametrize("field, value", OUT_OF_RANGE)
def test_openrft_settings_out_of_range_are_refused_naming_the_field(client, field, value):
    body = json.dumps(job_body(client, **{field: value}))  # NaN as Python's json writes it (httpx refuses to)
    response = client.post("/v1/fine_tuning/jobs", headers={**AUTH, "Content-Type": "application/json"}, content=body)
    error = assert_openai_error(response, 400)
    assert error["param"] == f"openrft.{field}", error
    assert f"openrft.{field}" in error["message"] and "Input should be" in error["message"], error
    assert listed_jobs(client) == []


def test_settings_in_range_are_still_accepted(client):
    body = job_body(client, prompts_per_generate=8, temperature=0.7, top_p=0.9, lora_rank=8, max_steps=1,
                    keep_checkpoints=0, learning_rate=1e-5)
    response = client.post("/v1/fine_tuning/jobs", headers=AUTH, json=body)
    assert response.status_code == 200, response.text
    assert [job["id"] for job in listed_jobs(client)] == [response.json()["id"]]


@pytest.mark.parametrize("openrft, param, words", [
    ({"task": "no-such-task"}, "openrft.task", "unknown task 'no-such-task'"),
    ({"task": ["gsm8k"]}, "openrft.task", "openrft.task"),
    ({"task": "gsm8k", "task_options": {"bogus": 1}}, "openrft.task_options", "has no option(s) bogus"),
    ({"task": "gsm8k", "task_options": ["limit"]}, "openrft.task_options", "must be a mapping"),
])
def test_an_unknown_task_or_task_option_is_a_400_naming_it(client, openrft, param, words):
    body = job_body(client, **openrft)
    response = client.post("/v1/fine_tuning/jobs", headers=AUTH, json=body)
    error = assert_openai_error(response, 400)
    assert error["param"] == param and words in error["message"], error
    assert "server_error" not in json.dumps(error)
    assert listed_jobs(client) == []


@pytest.mark.parametrize("openrft, words", [
    ({"prompts_per_generate": -1}, "openrft.prompts_per_generate: Input should be greater than or equal to 1"),
    ({"task": "no-such-task"}, "openrft.task: unknown task 'no-such-task'"),
    ({"task": "gsm8k", "task_options": {"bogus": 1}}, "openrft.task_options: task gsm8k has no option(s) bogus"),
])
def test_openrft_train_exits_2_on_a_bad_setting_or_task(data_home, tmp_path, openrft, words):
    from typer.testing import CliRunner

    from openrft.cli import app

    (tmp_path / "train.jsonl").write_text(json.dumps(ROW) + "\n")
    job = tmp_path / "job.yaml"
    job.write_text(yaml.safe_dump({"model": "default", "training_file": "train.jsonl", "openrft": openrft,
                                   "method": {"type": "reinforcement", "reinforcement": {"grader": GRADER}}}))
    result = CliRunner().invoke(app, ["train", str(job), "--create-only"])
    assert result.exit_code == 2, result.output
    assert words in " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert not (data_home / "runs").exists() or list((data_home / "runs").iterdir()) == []


MODELS = ["/etc", "/etc/passwd", "/root", "../../etc", "/no/such/path", "no-such-model"]


def test_a_model_that_does_not_resolve_gets_one_message_whatever_is_at_that_path(client):
    evaluation = client.post("/v1/evals", headers=AUTH, json={
        "data_source_config": {"type": "custom", "item_schema": {"type": "object"}}, "testing_criteria": [GRADER]})
    assert evaluation.status_code == 200, evaluation.text
    run_messages, job_messages = set(), set()
    for model in MODELS:
        source = {"type": "completions", "model": model,
                  "source": {"type": "file_content", "content": [{"item": {"answer": "a"}}]},
                  "input_messages": {"type": "template", "template": [{"role": "user", "content": "hi"}]}}
        error = assert_openai_error(client.post(f"/v1/evals/{evaluation.json()['id']}/runs", headers=AUTH,
                                                json={"data_source": source}), 400)
        assert error["code"] == "model_not_found" and error["param"] == "data_source.model", error
        run_messages.add(error["message"].replace(model, "MODEL"))
        error = assert_openai_error(client.post("/v1/fine_tuning/jobs", headers=AUTH,
                                                json={**job_body(client), "model": model}), 400)
        assert error["code"] == "model_not_found" and error["param"] == "model", error
        job_messages.add(error["message"].replace(model, "MODEL"))
    # a directory, a file, a folder without access and a missing path all read the same
    assert run_messages == job_messages == {"The model `MODEL` does not exist or you do not have access to it."}


def test_jobs_and_eval_runs_grade_as_one_sandbox_caller_each(monkeypatch, tmp_path):
    from openrft import training
    from openrft.graders import sandbox
    from openrft.service import evals as service_evals
    from openrft.service import worker

    seen = {}

    class Store:
        def get(self, table, row_id):
            return {"run_dir": str(tmp_path)}

    monkeypatch.setattr(training, "run_job", lambda run_dir, **kw: seen.setdefault("job", sandbox._caller.get())
                        and {"status": "succeeded"})
    monkeypatch.setattr(service_evals, "execute_run",
                        lambda store, run_id, should_stop: seen.setdefault("run", sandbox._caller.get()) and "completed")
    assert worker.run_training_job(Store(), "ftjob-1", lambda: None) == "succeeded"
    assert worker.run_eval_run(Store(), "evalrun_2", lambda: None) == "completed"
    assert seen == {"job": "job:ftjob-1", "run": "eval_run:evalrun_2"}
    assert sandbox._caller.get() is None
