"""The HTTP API in-process (FastAPI's TestClient): auth, OpenAI error objects, files, pagination, bad requests."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from openrft.service.app import create_app
from openrft.service.store import Store

KEY = "sk-test-123456"
AUTH = {"Authorization": f"Bearer {KEY}"}
ROW = {"messages": [{"role": "user", "content": "Is the sky blue? Answer yes or no."}], "answer": "yes"}
ROW2 = {"messages": [{"role": "user", "content": "Is grass red? Answer yes or no."}], "answer": "no"}


@pytest.fixture()
def data_home(tmp_path, monkeypatch):
    """A private data directory (these tests load no model)."""
    home = tmp_path / "home"
    monkeypatch.setenv("OPENRFT_HOME", str(home))
    monkeypatch.delenv("OPENRFT_DATABASE_URL", raising=False)
    return home


@pytest.fixture()
def client(data_home) -> TestClient:
    return TestClient(create_app(Store(), api_key=KEY))


def jsonl(*rows) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def upload(client, content: bytes, name="train.jsonl", purpose="fine-tune"):
    return client.post("/v1/files", headers=AUTH, files={"file": (name, content)}, data={"purpose": purpose})


def assert_error(response, status: int, *, param=None, code=None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"}
    assert error["message"]
    if param is not None:
        assert error["param"] == param
    if code is not None:
        assert error["code"] == code
    return error


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}])
def test_every_route_needs_the_key(client, headers):
    for method, path in [("get", "/v1/files"), ("get", "/v1/models"), ("post", "/v1/fine_tuning/jobs"),
                         ("get", "/v1/evals"), ("post", "/v1/chat/completions"), ("get", "/v1/unknown")]:
        response = getattr(client, method)(path, headers=headers)
        error = assert_error(response, 401, code="invalid_api_key")
        assert error == {"message": error["message"], "type": "invalid_request_error", "param": None,
                         "code": "invalid_api_key"}


def test_no_key_configured_means_open(data_home):
    assert TestClient(create_app(Store())).get("/v1/files").status_code == 200


def test_files_upload_list_retrieve_content_delete(client, data_home):
    created = [upload(client, jsonl(ROW, ROW2), name=f"t{i}.jsonl").json() for i in range(3)]
    first = created[0]
    assert first["object"] == "file" and first["id"].startswith("file-") and first["purpose"] == "fine-tune"
    assert first["filename"] == "t0.jsonl" and first["bytes"] == len(jsonl(ROW, ROW2))
    assert (data_home / "files" / first["id"]).is_file()

    listed = client.get("/v1/files", headers=AUTH, params={"limit": 2}).json()
    assert [f["id"] for f in listed["data"]] == [created[2]["id"], created[1]["id"]]  # newest first
    assert listed["has_more"] is True
    rest = client.get("/v1/files", headers=AUTH, params={"limit": 2, "after": listed["data"][-1]["id"]}).json()
    assert [f["id"] for f in rest["data"]] == [first["id"]] and rest["has_more"] is False

    assert client.get(f"/v1/files/{first['id']}", headers=AUTH).json() == first
    assert client.get(f"/v1/files/{first['id']}/content", headers=AUTH).content == jsonl(ROW, ROW2)
    assert client.delete(f"/v1/files/{first['id']}", headers=AUTH).json() == {
        "id": first["id"], "object": "file", "deleted": True}
    assert not (data_home / "files" / first["id"]).exists()
    assert_error(client.get(f"/v1/files/{first['id']}", headers=AUTH), 404)


def test_client_filenames_never_become_paths(client, data_home):
    made = upload(client, b'{"x": 1}\n', name="../../../escape.jsonl", purpose="evals").json()
    assert made["filename"] == "escape.jsonl"
    assert [p.name for p in (data_home / "files").iterdir()] == [made["id"]]
    assert not (data_home.parent / "escape.jsonl").exists()
    for bad in ("..", "file-..%2F..%2Fstore.db", "%2e%2e"):
        assert client.get(f"/v1/files/{bad}/content", headers=AUTH).status_code == 404


def test_a_bad_fine_tune_file_is_refused_with_every_problem(client, data_home):
    bad = jsonl(ROW, {"messages": []}) + b"not json\n" + jsonl({"messages": [{"role": "user", "content": 3}]})
    error = assert_error(upload(client, bad, name="bad.jsonl"), 400, param="file", code="invalid_file_format")
    lines = sorted({p["line"] for p in error["problems"]})
    assert lines == [2, 3, 4]
    assert all(p["file"] == "bad.jsonl" and p["reason"] for p in error["problems"])
    assert "bad.jsonl line 3" in error["message"]
    assert list((data_home / "files").iterdir()) == []  # nothing kept


def test_bad_upload_requests(client):
    assert_error(client.post("/v1/files", headers=AUTH, files={"file": ("a.jsonl", b"{}\n")}), 400,
                 param="purpose", code="missing_required_parameter")
    assert_error(upload(client, b"{}\n", purpose="nonsense"), 400, param="purpose")
    assert_error(upload(client, b"", purpose="evals"), 400, param="file")


def test_bad_requests_get_openai_errors(client):
    assert_error(client.get("/v1/files/file-nope", headers=AUTH), 404)
    assert_error(client.get("/v1/fine_tuning/jobs/ftjob-nope", headers=AUTH), 404)
    assert_error(client.get("/v1/evals/eval_nope", headers=AUTH), 404)
    assert_error(client.get("/v1/files", headers=AUTH, params={"after": "file-nope"}), 400, param="after")
    hello = [{"role": "user", "content": "hi"}]
    assert_error(client.post("/v1/chat/completions", headers=AUTH, json={"messages": hello}), 400, param="model",
                 code="missing_required_parameter")
    assert_error(client.post("/v1/chat/completions", headers=AUTH, content=b"{not json",
                             ), 400)
    assert_error(client.post("/v1/fine_tuning/jobs", headers=AUTH, json={"training_file": "file-x"}), 400,
                 param="model", code="missing_required_parameter")
    grader = {"type": "string_check", "name": "yes", "input": "{{sample.output_text}}",
              "reference": "{{item.answer}}", "operation": "eq"}
    body = {"model": "default", "training_file": "file-unknown",
            "method": {"type": "reinforcement", "reinforcement": {"grader": grader}}}
    assert_error(client.post("/v1/fine_tuning/jobs", headers=AUTH, json=body), 400, param="training_file")
    assert_error(client.post("/v1/evals", headers=AUTH, json={"data_source_config": {"type": "custom"}}), 400,
                 param="testing_criteria", code="missing_required_parameter")
    assert_error(client.post("/v1/evals", headers=AUTH, json={"data_source_config": {"type": "logs"},
                                                              "testing_criteria": [grader]}),
                 400, param="data_source_config.type")
    assert_error(client.delete("/v1/models", headers=AUTH), 405)
