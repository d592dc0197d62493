"""A plain-SDK job (no `openrft` block) gets the server's hardware: cuda and bfloat16 where torch sees a GPU,
cpu and float32 elsewhere (`openrft.device` / `openrft.precision` "auto", resolved when the job is created)."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from openrft.service.app import create_app
from openrft.service.store import Store

openai = pytest.importorskip("openai")

KEY = "sk-gpu-defaults"
GRADER = {"type": "string_check", "name": "exact", "input": "{{sample.output_text}}", "reference": "{{item.answer}}",
          "operation": "eq"}
ROWS = [{"messages": [{"role": "user", "content": "Is snow white?"}], "answer": "yes"},
        {"messages": [{"role": "user", "content": "Is fire cold?"}], "answer": "no"}]


@pytest.fixture()
def client(tmp_path, monkeypatch, embedded_model):
    monkeypatch.setenv("OPENRFT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("OPENRFT_DATABASE_URL", raising=False)
    (tmp_path / "home" / "models").mkdir(parents=True)
    (tmp_path / "home" / "models" / embedded_model.name).symlink_to(embedded_model)
    app = create_app(Store(), api_key=KEY)
    return openai.OpenAI(api_key=KEY, base_url="http://testserver/v1", http_client=TestClient(app), max_retries=0)


def create(client, **extra):
    content = "".join(json.dumps(r) + "\n" for r in ROWS).encode()
    file_id = client.files.create(file=("rows.jsonl", content), purpose="fine-tune").id
    method = {"type": "reinforcement", "reinforcement": {"grader": GRADER}}
    return client.fine_tuning.jobs.create(model="default", training_file=file_id, method=method, **extra)


def fake_gpu(monkeypatch, *, bf16: bool) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)


def test_a_plain_job_on_a_gpu_server_runs_on_the_gpu_in_bfloat16(client, monkeypatch):
    fake_gpu(monkeypatch, bf16=True)
    job = create(client)
    assert (job.openrft["device"], job.openrft["precision"]) == ("cuda", "bfloat16")
    again = client.fine_tuning.jobs.retrieve(job.id)  # what the worker will read
    assert (again.openrft["device"], again.openrft["precision"]) == ("cuda", "bfloat16")
    given = create(client, extra_body={"openrft": {"device": "cpu"}})  # an explicit choice is kept
    assert (given.openrft["device"], given.openrft["precision"]) == ("cpu", "float32")


def test_an_older_gpu_gets_float32_and_a_laptop_keeps_the_cpu(client, monkeypatch):
    import torch

    with monkeypatch.context() as patch:
        fake_gpu(patch, bf16=False)
        job = create(client)
        assert (job.openrft["device"], job.openrft["precision"]) == ("cuda", "float32")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the laptop case cannot be seen here")
    job = create(client)
    assert (job.openrft["device"], job.openrft["precision"]) == ("cpu", "float32")
