"""The playground's endpoints with a scripted engine: the job's models and items are offered, each answer is
sampled with the job's response_format and graded by the job's grader against the chosen item, and only the
job's own models can be asked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from openrft.dashboard.web import create_app
from openrft.engines import Sample

RESPONSE_FORMAT = {"type": "json_schema", "json_schema": {"name": "mood", "strict": True, "schema": {
    "type": "object", "properties": {"mood": {"type": "string", "enum": ["happy", "sad"]}}, "required": ["mood"],
    "additionalProperties": False}}}
GRADER = {"type": "string_check", "name": "mood_matches", "input": "{{ sample.output_json.mood }}",
          "reference": "{{ item.mood }}", "operation": "eq"}
ROWS = [{"messages": [{"role": "developer", "content": "Answer in JSON."},
                      {"role": "user", "content": "I won the lottery. How do I feel?"}], "mood": "happy"},
        {"messages": [{"role": "user", "content": "My cat ran away. How do I feel?"}], "mood": "sad"}]


def write_playground_job(run: Path, *, rows=ROWS, response_format=RESPONSE_FORMAT, grader=GRADER) -> Path:
    """A finished job's run directory: job.json, its validation file, checkpoints step-1 and step-2, final."""
    run.mkdir(parents=True)
    valid = run / "valid.jsonl"
    valid.write_text("".join(json.dumps(r) + "\n" for r in rows))
    job = {"object": "fine_tuning.job", "id": run.name, "status": "succeeded", "model": "default",
           "fine_tuned_model": f"ft:default:openrft:mood:{run.name[-8:]}", "created_at": 1,
           "organization_id": "org-openrft", "result_files": [], "seed": 1, "training_file": str(valid),
           "method": {"type": "reinforcement", "reinforcement": {
               "grader": grader, "response_format": response_format,
               "hyperparameters": {"reasoning_effort": "default", "batch_size": 2, "n_epochs": 1,
                                   "resolved": {"steps_per_epoch": 1, "total_steps": 2, "learning_rate": 1e-4,
                                                "seed": 1, "group_size": 2}}}},
           "openrft": {"max_tokens": 12, "validation_path": str(valid), "training_path": str(valid)}}
    (run / "job.json").write_text(json.dumps(job))
    for step in (1, 2):
        folder = run / "checkpoints" / f"step-{step}"
        folder.mkdir(parents=True)
        (folder / "checkpoint.json").write_text(json.dumps({
            "object": "fine_tuning.job.checkpoint", "id": f"ftckpt-{step}", "created_at": 1,
            "fine_tuning_job_id": run.name, "step_number": step,
            "fine_tuned_model_checkpoint": f"{job['fine_tuned_model']}:ckpt-step-{step}",
            "metrics": {"full_valid_mean_reward": 0.25 * step}}))
        (folder / "adapter_config.json").write_text("{}")
    final = run / "checkpoints" / "final"
    final.mkdir()
    (final / "adapter_config.json").write_text("{}")
    return run


class ScriptedEngines:
    """An engine cache whose models answer `answers[model]` and which records every request."""

    def __init__(self, answers: dict[str, str]):
        self.answers = answers
        self.calls: list[tuple[str, list, object]] = []

    def generate(self, model, prompts, params):
        from openrft.engines.structured import parse_answer, response_schema

        self.calls.append((model, prompts, params))
        text = self.answers[model]
        output_json, parse_error = parse_answer(text, response_schema(params.response_format))
        return [[Sample(prompt_index=0, output_text=text, output_json=output_json, parse_error=parse_error,
                        completion_tokens=5)]]


@pytest.fixture()
def job_client(tmp_path):
    run = write_playground_job(tmp_path / "runs" / "ftjob-mood0001")
    app = create_app([tmp_path / "runs"])
    engines = ScriptedEngines({"default": '{"mood": "sad"}',
                               str(run / "checkpoints" / "step-1"): '{"mood": "happy"}',
                               str(run / "checkpoints" / "step-2"): '{"mood": "happy"}',
                               str(run / "checkpoints" / "final"): 'not json'})
    app.state.engines = engines
    return TestClient(app), engines, run


def test_the_job_models_items_format_and_grader_are_offered(job_client):
    client, _, _ = job_client
    view = client.get("/dashboard/api/playground/ftjob-mood0001").json()
    assert [m["id"] for m in view["models"]] == ["base", "step-1", "step-2", "final"]
    assert view["models"][2]["label"].endswith(":ckpt-step-2") and view["models"][2]["valid_reward"] == 0.5
    assert all("engine_model" not in m for m in view["models"])  # no paths go to the page
    assert [it["preview"] for it in view["items"]] == ["I won the lottery. How do I feel?",
                                                      "My cat ran away. How do I feel?"]
    assert view["response_format"] == RESPONSE_FORMAT and view["grader"] == {"type": "string_check",
                                                                             "name": "mood_matches"}
    assert view["max_tokens"] == 12


def test_each_answer_is_sampled_with_the_jobs_format_and_graded_against_the_item(job_client):
    client, engines, run = job_client
    url = "/dashboard/api/playground/ftjob-mood0001"
    base = client.post(url, json={"model": "base", "item": 0}).json()
    tuned = client.post(url, json={"model": "step-1", "item": 0}).json()
    assert base["output_json"] == {"mood": "sad"} and base["reward"] == 0.0
    assert tuned["output_json"] == {"mood": "happy"} and tuned["reward"] == 1.0
    assert tuned["grade"]["metadata"]["name"] == "mood_matches"
    model, prompts, params = engines.calls[1]
    assert model == str(run / "checkpoints" / "step-1")
    assert prompts == [ROWS[0]["messages"]]  # the item's messages, developer message included
    assert params.response_format == RESPONSE_FORMAT and params.temperature == 0.0 and params.max_tokens == 12
    # an edited prompt, graded against item 1 (sad): the checkpoint's 'happy' now scores 0
    edited = [{"role": "user", "content": "My dog is ill. How do I feel?"}]
    again = client.post(url, json={"model": "step-2", "item": 1, "messages": edited, "temperature": 0.7,
                                   "max_tokens": 20}).json()
    assert again["reward"] == 0.0 and engines.calls[-1][1] == [edited]
    assert engines.calls[-1][2].temperature == 0.7 and engines.calls[-1][2].max_tokens == 20
    # an answer that does not parse is reported and graded (string_check sees no mood)
    final = client.post(url, json={"model": "final", "item": 0}).json()
    assert final["parse_error"] and final["reward"] == 0.0


def test_only_the_jobs_own_models_and_items_can_be_asked(job_client, tmp_path):
    client, engines, _ = job_client
    url = "/dashboard/api/playground/ftjob-mood0001"
    for body in ({"model": str(tmp_path), "item": 0}, {"model": "default", "item": 0},
                 {"model": "base", "item": 7}, {"model": "base"},
                 {"model": "base", "messages": [{"role": "user"}]}):
        response = client.post(url, json=body)
        assert response.status_code == 422, body
    assert engines.calls == []
    assert client.get("/dashboard/api/playground/nope").status_code == 404
