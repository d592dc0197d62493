"""Auth and paths: with an API key every route of the app's route table refuses a missing or wrong key, ids
and keys never reach files outside the data directory, and uploads only ever land in its files folder."""

from __future__ import annotations

import re

import pytest

from tests.reliability.conftest import AUTH, KEY, assert_openai_error, route_table

BAD_HEADERS = [{}, {"Authorization": ""}, {"Authorization": "Bearer"}, {"Authorization": "Bearer wrong"},
               {"Authorization": KEY}, {"Authorization": f"Basic {KEY}"}, {"Authorization": f"Bearer {KEY}x"},
               {"Authorization": f"Bearer {KEY[:-1]}"}, {"Authorization": f"Bearer {KEY.upper()}"},
               {"X-Api-Key": KEY}]
TRICKS = ["..", "../store.db", "..%2Fstore.db", "%2e%2e%2fstore.db", "..%2F..%2Fsecret.txt", "....%2F%2Fsecret.txt",
          "%2Fetc%2Fpasswd", "..%5C..%5Csecret.txt", "file-..", "~", "%00", "secret.txt", "..%2Fsecret.txt",
          "..%2F..%2F..%2F..%2Fetc%2Fpasswd"]
SECRET = "TOP-SECRET-do-not-serve"


def concrete(path: str, value: str = "x") -> str:
    return re.sub(r"\{[^}]+\}", value, path)


def test_the_route_table_is_complete(app):
    table = route_table(app)
    paths = {path for _, path in table}
    assert {"/v1/files", "/v1/fine_tuning/jobs", "/v1/chat/completions", "/v1/models"} <= paths
    assert len(table) >= 25, table


@pytest.mark.parametrize("headers", BAD_HEADERS, ids=lambda h: repr(h)[:40])
def test_every_route_refuses_a_missing_or_wrong_key(client, app, data_home, headers):
    for method, path in route_table(app):
        response = client.request(method, concrete(path), headers=headers,
                                  json={"model": "default", "messages": [{"role": "user", "content": "hi"}]})
        error = assert_openai_error(response, 401)
        assert error["code"] == "invalid_api_key", (method, path)
        assert KEY not in response.text
    # refused requests leave no trace
    assert list((data_home / "files").glob("*")) == [] if (data_home / "files").exists() else True
    assert client.get("/v1/files", headers=AUTH).json()["data"] == []


def test_the_right_key_opens_every_route(client, app):
    for method, path in route_table(app):
        if path.endswith("/chat/completions") or path.startswith("/docs") or path.startswith("/redoc"):
            continue
        response = client.request(method, concrete(path), headers=AUTH)
        assert response.status_code != 401, (method, path, response.text[:200])


@pytest.fixture()
def planted(data_home, client):
    """Secrets beside and above the data directory, and one real upload."""
    (data_home / "secret.txt").write_text(SECRET)
    (data_home.parent / "secret.txt").write_text(SECRET)
    (data_home / "runs" / "secret").mkdir(parents=True, exist_ok=True)
    (data_home / "runs" / "secret" / "job.json").write_text('{"secret": "%s"}' % SECRET)
    made = client.post("/v1/files", headers=AUTH, files={"file": ("a.jsonl", b'{"x": 1}\n')},
                       data={"purpose": "evals"}).json()
    return made["id"]


def test_ids_and_keys_cannot_walk_out(client, app, planted):
    checked = 0
    for method, path in route_table(app):
        if "{" not in path or method not in ("GET", "DELETE", "POST"):
            continue
        for trick in TRICKS:
            for value in (trick, f"{planted}/{trick}", f"{planted}%2F{trick}"):
                response = client.request(method, concrete(path, value), headers=AUTH)
                checked += 1
                assert response.status_code < 500, (method, path, value, response.status_code)
                assert SECRET not in response.text and "root:" not in response.text
    assert checked > 300
    assert client.get(f"/v1/files/{planted}/content", headers=AUTH).content == b'{"x": 1}\n'


@pytest.mark.parametrize("name", ["../../../escape.jsonl", "/tmp/abs.jsonl", "..", ".", "a/../../b.jsonl",
                                  "..\\..\\win.jsonl", "%2e%2e%2fx.jsonl", "\u202e.jsonl", "x" * 5000])
def test_uploads_land_only_in_the_files_folder(client, data_home, name):
    response = client.post("/v1/files", headers=AUTH, files={"file": (name, b'{"x": 1}\n')}, data={"purpose": "evals"})
    if response.status_code == 200:
        made = response.json()
        assert "/" not in made["filename"] and "\\" not in made["filename"] and made["filename"] not in (".", "..")
        assert [p.name for p in (data_home / "files").iterdir()] == [made["id"]]
    else:  # a name the multipart parser refuses (over its header limit): a clear 400, nothing kept
        assert_openai_error(response, 400)
        assert not (data_home / "files").exists() or list((data_home / "files").iterdir()) == []
    outside = [p for p in data_home.parent.rglob("*") if p.is_file() and data_home / "files" not in p.parents
               and p.parent != data_home]
    assert outside == [], outside
