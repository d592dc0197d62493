"""Jobs and evals through the API in-process, without a model: queue states, CLI runs, recovery, eval runs.

Training itself is exercised end to end in test_server.py; here the worker runs eval runs whose items carry
their samples (a `jsonl` data source), which needs graders but no model.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from openrft.service.app import create_app
from openrft.service.store import Store, WorkerId, eval_runs, jobs
from openrft.service.worker import Worker, recover

GRADER = {"type": "string_check", "name": "exact", "input": "{{sample.output_json.answer}}",
          "reference": "{{item.answer}}", "operation": "eq"}
ROWS = [{"messages": [{"role": "user", "content": "Is snow white?"}], "answer": "yes"},
        {"messages": [{"role": "user", "content": "Is fire cold?"}], "answer": "no"}]


@pytest.fixture()
def data_home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("OPENRFT_HOME", str(home))
    monkeypatch.delenv("OPENRFT_DATABASE_URL", raising=False)
    return home


@pytest.fixture()
def store(data_home) -> Store:
    return Store()


@pytest.fixture()
def client(store) -> TestClient:
    return TestClient(create_app(store))


def upload_rows(client, rows, name="train.jsonl") -> str:
    content = "".join(json.dumps(r) + "\n" for r in rows).encode()
    response = client.post("/v1/files", files={"file": (name, content)}, data={"purpose": "fine-tune"})
    assert response.status_code == 200, response.text
    return response.json()["id"]


def job_body(file_id: str, **extra) -> dict:
    return {"model": "default", "training_file": file_id, "suffix": "t", "metadata": {"team": "a"},
            "method": {"type": "reinforcement", "reinforcement": {
                "grader": GRADER, "hyperparameters": {"batch_size": 1, "n_epochs": 1}}}, **extra}


def test_job_queue_states_through_the_api(client, store, data_home):
    file_id = upload_rows(client, ROWS)
    created = client.post("/v1/fine_tuning/jobs", json=job_body(file_id)).json()
    assert created["status"] == "queued" and created["training_file"] == file_id
    job_id = created["id"]
    run_dir = data_home / "runs" / job_id
    assert (run_dir / "job.json").is_file()

    other = client.post("/v1/fine_tuning/jobs", json=job_body(file_id, metadata={"team": "b"})).json()
    listed = client.get("/v1/fine_tuning/jobs", params={"metadata[team]": "a"}).json()
    assert [j["id"] for j in listed["data"]] == [job_id]
    everything = client.get("/v1/fine_tuning/jobs", params={"limit": 1}).json()
    assert [j["id"] for j in everything["data"]] == [other["id"]] and everything["has_more"]

    assert client.post(f"/v1/fine_tuning/jobs/{job_id}/pause").json()["status"] == "paused"
    assert json.loads((run_dir / "job.json").read_text())["status"] == "paused"  # the run directory agrees
    assert client.post(f"/v1/fine_tuning/jobs/{job_id}/resume").json()["status"] == "queued"
    error = client.post(f"/v1/fine_tuning/jobs/{job_id}/resume").json()["error"]
    assert error["param"] == "fine_tuning_job_id"

    cancelled = client.post(f"/v1/fine_tuning/jobs/{other['id']}/cancel").json()
    assert cancelled["status"] == "cancelled"
    assert client.post(f"/v1/fine_tuning/jobs/{other['id']}/cancel").status_code == 400

    # A running job is asked to stop; the worker's should_stop sees it at the next step boundary.
    assert store.claim(WorkerId.this_process(), ("job",)) == ("job", job_id)
    assert client.post(f"/v1/fine_tuning/jobs/{job_id}/cancel").json()["status"] == "running"
    assert store.requested_action("job", job_id) == "cancel"
    events = client.get(f"/v1/fine_tuning/jobs/{job_id}/events").json()["data"]
    assert events[0]["message"].startswith("Cancellation requested")  # newest first
    assert events[-1]["message"] == "Created fine-tuning job"
    assert client.get(f"/v1/fine_tuning/jobs/{job_id}/checkpoints").json() == {
        "object": "list", "data": [], "has_more": False, "first_id": None, "last_id": None}


def test_bad_job_bodies_name_their_parameter(client):
    file_id = upload_rows(client, ROWS)
    bad_grader = job_body(file_id)
    bad_grader["method"]["reinforcement"]["grader"] = {**GRADER, "operation": "equals"}
    error = client.post("/v1/fine_tuning/jobs", json=bad_grader).json()["error"]
    assert error["param"] == "method.reinforcement.grader.operation"
    reads_missing_field = job_body(file_id)
    reads_missing_field["method"]["reinforcement"]["grader"] = {**GRADER, "reference": "{{item.label}}"}
    response = client.post("/v1/fine_tuning/jobs", json=reads_missing_field)
    assert response.status_code == 400 and "label" in response.json()["error"]["message"]
    bad_hyper = job_body(file_id)
    bad_hyper["method"]["reinforcement"]["hyperparameters"] = {"batch_size": 0}
    error = client.post("/v1/fine_tuning/jobs", json=bad_hyper).json()["error"]
    assert error["param"] == "method.reinforcement.hyperparameters.batch_size"
    escape = job_body(file_id, openrft={"output_dir": "/tmp/elsewhere"})
    assert client.post("/v1/fine_tuning/jobs", json=escape).json()["error"]["param"] == "openrft.output_dir"
    not_checked = client.post("/v1/files", files={"file": ("x.jsonl", b'{"answer": "yes"}\n')},
                              data={"purpose": "evals"}).json()["id"]  # only fine-tune uploads are checked
    error = client.post("/v1/fine_tuning/jobs", json=job_body(file_id, validation_file=not_checked)).json()["error"]
    assert (error["param"], error["code"]) == ("validation_file", "invalid_file_format")
    assert error["problems"][0]["file"] == not_checked and error["problems"][0]["field"] == "messages"
    supervised = job_body(file_id)  # RFT rows in a supervised job: no assistant answer to train on
    supervised["method"] = {"type": "supervised"}
    error = client.post("/v1/fine_tuning/jobs", json=supervised).json()["error"]
    assert (error["param"], error["problems"][0]["line"], error["problems"][0]["field"]) == \
        ("training_file", 1, "messages")
    mismatched = job_body(file_id)
    mismatched["method"]["type"] = "dpo"  # with the reinforcement block
    assert client.post("/v1/fine_tuning/jobs", json=mismatched).json()["error"]["param"] == "method.reinforcement"
    unknown = job_body(file_id)
    unknown["method"] = {"type": "distillation"}
    assert client.post("/v1/fine_tuning/jobs", json=unknown).json()["error"]["param"] == "method.type"
    missing_model = job_body(file_id)
    missing_model["model"] = "ft:default:openrft:nothing:deadbeef"
    error = client.post("/v1/fine_tuning/jobs", json=missing_model).json()["error"]
    assert (error["param"], error["code"]) == ("model", "model_not_found")


def test_cli_runs_show_up_and_stay_the_cli_s(client, data_home, tmp_path):
    from openrft.training import create_job

    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    cli_job = create_job({"model": "default", "training_file": str(train),
                          "method": {"type": "reinforcement", "reinforcement": {"grader": GRADER}}})
    listed = client.get("/v1/fine_tuning/jobs").json()["data"]
    assert [j["id"] for j in listed] == [cli_job["id"]]
    assert client.get(f"/v1/fine_tuning/jobs/{cli_job['id']}").json()["status"] == "queued"
    assert client.post(f"/v1/fine_tuning/jobs/{cli_job['id']}/cancel").json()["error"]["code"] == "not_managed"
    assert Store().claim(WorkerId.this_process(), ("job",)) is None  # the workers leave CLI runs alone


def test_recovery_requeues_the_job_of_a_dead_worker_in_its_run_directory(client, store, data_home):
    job_id = client.post("/v1/fine_tuning/jobs", json=job_body(upload_rows(client, ROWS))).json()["id"]
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    store.claim(WorkerId(WorkerId.this_process().host, dead.pid), ("job",))
    assert recover(store) == [("job", job_id, "queued")]
    assert store.get(jobs, job_id)["status"] == "queued"
    events = client.get(f"/v1/fine_tuning/jobs/{job_id}/events").json()["data"]
    assert events[0]["message"].startswith("Worker lost") and events[0]["level"] == "warn"


def test_eval_with_given_samples_runs_in_a_worker(client, store):
    evaluation = client.post("/v1/evals", json={
        "name": "yes-no", "data_source_config": {"type": "custom", "item_schema": {"type": "object"}},
        "testing_criteria": [GRADER]}).json()
    assert evaluation["id"].startswith("eval_") and evaluation["testing_criteria"][0]["id"].startswith("exact-")
    content = [{"item": {"answer": "yes"}, "sample": {"output_text": '{"answer": "yes"}'}},
               {"item": {"answer": "no"}, "sample": {"output_text": '{"answer": "yes"}'}},
               {"item": {"answer": "no"}, "sample": {"output_text": "not json"}}]
    source = {"type": "file_content", "content": content}
    run = client.post(f"/v1/evals/{evaluation['id']}/runs",
                      json={"name": "given", "data_source": {"type": "jsonl", "source": source}}).json()
    assert run["status"] == "queued" and run["id"].startswith("evalrun_")
    assert Worker(store, handlers=None).run_once() == ("eval_run", run["id"], "completed")

    done = client.get(f"/v1/evals/{evaluation['id']}/runs/{run['id']}").json()
    assert done["status"] == "completed"
    assert done["result_counts"]["total"] == 3 and done["result_counts"]["passed"] == 1
    assert done["per_testing_criteria_results"] == [
        {"testing_criteria": evaluation["testing_criteria"][0]["id"], "passed": 1, "failed": 2}]
    items = client.get(f"/v1/evals/{evaluation['id']}/runs/{run['id']}/output_items").json()
    assert [i["status"] for i in items["data"]] == ["pass", "fail", "fail"]
    assert all(i["run_id"] == run["id"] and i["eval_id"] == evaluation["id"] for i in items["data"])
    passed = client.get(f"/v1/evals/{evaluation['id']}/runs/{run['id']}/output_items", params={"status": "pass"}).json()
    assert [i["datasource_item"] for i in passed["data"]] == [{"answer": "yes"}]
    one = items["data"][1]
    assert client.get(f"/v1/evals/{evaluation['id']}/runs/{run['id']}/output_items/{one['id']}").json() == one
    completed = client.get(f"/v1/evals/{evaluation['id']}/runs", params={"status": "completed"}).json()["data"]
    assert [r["id"] for r in completed] == [run["id"]]
    assert client.delete(f"/v1/evals/{evaluation['id']}").json()["deleted"] is True
    assert store.get(eval_runs, run["id"]) is None


def test_bad_eval_runs_are_refused_before_queueing(client):
    evaluation = client.post("/v1/evals", json={"data_source_config": {"type": "custom"},
                                                "testing_criteria": [GRADER]}).json()
    runs = f"/v1/evals/{evaluation['id']}/runs"
    assert client.post(runs, json={}).json()["error"]["param"] == "data_source"
    no_model = {"type": "completions", "source": {"type": "file_id", "id": "file-nope"}}
    assert client.post(runs, json={"data_source": no_model}).json()["error"]["param"] == "data_source.model"
    unknown_file = {**no_model, "model": "default"}
    assert client.post(runs, json={"data_source": unknown_file}).json()["error"]["param"] == "data_source.source.id"
    unknown_model = {**unknown_file, "model": "/no/such/model"}
    assert client.post(runs, json={"data_source": unknown_model}).json()["error"]["code"] == "model_not_found"
    bad_criterion = client.post("/v1/evals", json={"data_source_config": {"type": "custom"},
                                                   "testing_criteria": [{**GRADER, "operation": "x"}]}).json()
    assert bad_criterion["error"]["param"] == "testing_criteria[0].operation"
