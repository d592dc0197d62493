"""Property-based tests over the HTTP API's request bodies, query strings and path parameters.

Every generated request to every route of the app (FastAPI TestClient, private OPENRFT_HOME) is answered
with a 2xx or with OpenAI's error object and a 4xx status: never a 500, never a traceback, never a hang.
Chat requests name models that do not exist (loading a model per case would take minutes on CPU).
"""

from __future__ import annotations

import json
import re
from urllib.parse import quote

from hypothesis import strategies as st

from tests.reliability.cases import count, no_hang
from tests.reliability.conftest import AUTH, assert_openai_error, fuzz, route_table
from tests.reliability.test_fuzz_parsers import grader_json, json_values, samples

BODY_KEYS = ["model", "messages", "training_file", "validation_file", "grader", "model_sample", "item", "method",
             "hyperparameters", "suffix", "seed", "metadata", "name", "data_source_config", "testing_criteria",
             "data_source", "response_format", "max_tokens", "n", "temperature", "reasoning_effort", "stream"]
ROW = {"messages": [{"role": "user", "content": "Is the sky blue?"}], "answer": "yes"}
path_values = st.sampled_from(["..", "../store.db", "%2e%2e", "..%2F..%2Fstore.db", "file-x", "ftjob-x", "eval_x",
                               "a/b", "", " ", "%00", "default/../..", "~"]) | st.text(max_size=20)
bodies = (st.dictionaries(st.sampled_from(BODY_KEYS), json_values, max_size=6)
          | st.builds(lambda g, s, i: {"grader": g, "model_sample": s, "item": i}, grader_json(), st.text(max_size=30),
                      st.dictionaries(st.sampled_from(["answer", "labels"]), json_values))
          | st.builds(lambda g, s: {"grader": g, "model_sample": s["output_text"]}, grader_json(), samples)
          | json_values)
raw_bodies = st.binary(max_size=200) | st.integers(1, 100_000).map(lambda n: b"[" * n)


@st.composite
def requests(draw, table):
    method, template = draw(st.sampled_from(table))
    slash = draw(st.sampled_from(["/", "%2F"]))
    path = re.sub(r"\{[^}]+\}", lambda _: quote(draw(path_values), safe="%/").replace("/", slash), template)
    query = draw(st.dictionaries(st.sampled_from(["limit", "after", "order", "purpose", "offset", "key", "status"]),
                                 st.text(max_size=12) | st.integers(-5, 10**12).map(str), max_size=3))
    if draw(st.booleans()):
        body = {"json": _chat_safe(template, draw(bodies))}
    else:
        body = {"content": draw(raw_bodies), "headers": {**AUTH, "content-type": "application/json"}}
    return method, path, query, body


def _chat_safe(template: str, body):
    """Chat and eval-run bodies name a model that does not exist (a real one would load for minutes)."""
    if isinstance(body, dict) and (template.endswith("/chat/completions") or "/runs" in template):
        body = {**body, "model": f"no-such-model-{body.get('model')!s:.10}"}
        if isinstance(body.get("data_source"), dict):
            body["data_source"] = {**body["data_source"], "model": "no-such-model"}
    return body


def check_request(client, data, table_holder):
    count("api_request")
    table = table_holder.setdefault("table", route_table(client.app))
    method, path, query, body = data.draw(requests([pair for pair in table if not pair[1].startswith("/docs")]))
    headers = body.pop("headers", AUTH)
    with no_hang(60):
        response = client.request(method, path, params=query, headers=headers, **body)
    assert response.status_code < 500, (method, path, response.status_code, response.text[:500])
    if response.status_code >= 400 and path.startswith("/v1"):
        assert_openai_error(response)


_holder: dict = {}
test_api_requests, test_api_requests_slow = fuzz(st.data(), st.just(_holder), fast=150, slow=2500)(check_request)


@st.composite
def uploads(draw):
    lines = [json.dumps(draw(st.sampled_from([ROW, {"messages": []}, {"x": 1}]))).encode(),
             draw(st.binary(max_size=40)), b"[" * draw(st.integers(1, 50_000))]
    content = b"\n".join(draw(st.lists(st.sampled_from(lines), max_size=5)))
    name = draw(st.sampled_from(["t.jsonl", "../../escape.jsonl", "/etc/passwd", "..", "a/../../b", "", "\\..\\x",
                                 "é.jsonl"]) | st.text(max_size=20))
    purpose = draw(st.sampled_from(["fine-tune", "evals", "user_data", "nonsense", ""]))
    return content, name, purpose


def check_upload(client, data_home, upload):
    count("api_upload")
    content, name, purpose = upload
    with no_hang(60):
        response = client.post("/v1/files", headers=AUTH, files={"file": (name, content)}, data={"purpose": purpose})
    if response.status_code == 200:
        made = response.json()
        assert (data_home / "files" / made["id"]).read_bytes() == content
        assert "/" not in made["filename"] and made["filename"] not in ("", ".", "..")
    else:
        assert_openai_error(response, 400)
    # Nothing outside the files folder, no half-written uploads left behind.
    assert {p.name for p in data_home.parent.iterdir()} == {"home"}
    stored = {row["id"] for row in client.get("/v1/files", headers=AUTH).json()["data"]}
    assert {p.name for p in (data_home / "files").iterdir()} == stored


test_uploads, test_uploads_slow = fuzz(uploads(), fast=80, slow=1500)(check_upload)
