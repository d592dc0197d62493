"""The OpenAI contract beyond the happy path (issue #17), through the official `openai` SDK, in-process.

The SDK talks to the app through FastAPI's TestClient (an httpx client), so these tests need no server
process. No model is loaded: chat, responses and eval runs sample from `FakeEngine`, which answers every
prompt with one fixed text (one token per character) and records what it was asked. The same calls
against the embedded model run in test_server.py.
"""

from __future__ import annotations

import importlib.machinery
import json
import sys
import types
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from openrft.engines import EngineError, Sample, SamplingParams
from openrft.service.app import create_app
from openrft.service.engine_cache import EngineCache
from openrft.service.store import Store, WorkerId, jobs
from openrft.service.worker import Worker

openai = pytest.importorskip("openai")

KEY = "sk-contract-test"
GRADER = {"type": "string_check", "name": "exact", "input": "{{sample.output_json.answer}}",
          "reference": "{{item.answer}}", "operation": "eq"}
ROWS = [{"messages": [{"role": "user", "content": "Is snow white?"}], "answer": "yes"},
        {"messages": [{"role": "user", "content": "Is fire cold?"}], "answer": "no"}]
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"],
          "additionalProperties": False}


class CharTokenizer:
    def decode(self, ids, **_):
        return "".join(chr(i) for i in ids if i)


class FakeEngine:
    """Answers every prompt with `text` (and `reasoning` in a think segment): one token per character."""

    def __init__(self, text='{"answer": "yes"}', reasoning="", finish_reason="stop", error=None,
                 parse_error=None):
        self.model_name = "fake"
        self.tokenizer = CharTokenizer()
        self.stop_token_ids = [0]
        self.text, self.reasoning, self.finish_reason = text, reasoning, finish_reason
        self.error, self.parse_error = error, parse_error
        self.calls = []

    def generate(self, prompts, params):
        self.calls.append((prompts, params))
        if self.error == "raise":
            raise EngineError("the engine broke")
        completion = (f"<think>{self.reasoning}</think>" if self.reasoning else "") + self.text
        ids = [ord(c) for c in completion] + [0]
        logprobs = [-0.25 * (k % 4) for k in range(len(ids))]
        output_json = None
        if self.parse_error is None and params.response_format:
            try:
                output_json = json.loads(self.text)
            except ValueError:
                output_json = None
        return [[Sample(prompt_index=i, output_text=self.text, output_json=output_json,
                        reasoning_text=self.reasoning, token_ids=ids, logprobs=logprobs, prompt_tokens=7,
                        completion_tokens=len(ids), reasoning_tokens=len(self.reasoning),
                        finish_reason=self.finish_reason, error=self.error, parse_error=self.parse_error,
                        model="fake")
                 for _ in range(params.n)] for i, _ in enumerate(prompts)]


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
def app(store):
    return create_app(store, api_key=KEY)


@pytest.fixture()
def engine(app) -> FakeEngine:
    fake = FakeEngine()
    app.state.engines = EngineCache(factory=lambda model: fake)
    return fake


@pytest.fixture()
def client(app):
    return openai.OpenAI(api_key=KEY, base_url="http://testserver/v1", http_client=TestClient(app), max_retries=0)


def upload(client, rows=ROWS, purpose="fine-tune") -> str:
    content = "".join(json.dumps(r) + "\n" for r in rows).encode()
    return client.files.create(file=("rows.jsonl", content), purpose=purpose).id


def method(grader=GRADER, **hyperparameters) -> dict:
    return {"type": "reinforcement", "reinforcement": {"grader": grader, "hyperparameters": hyperparameters}}


# --- errors and models ---

def test_errors_carry_snake_case_codes_request_ids_and_retry_advice(client, app, engine):
    with pytest.raises(openai.NotFoundError) as caught:
        client.fine_tuning.jobs.retrieve("ftjob-nope")
    assert caught.value.code == "fine_tuning_job_not_found"
    assert caught.value.request_id.startswith("req_")
    with pytest.raises(openai.NotFoundError) as caught:
        client.evals.runs.retrieve("evalrun_nope", eval_id="eval_nope")
    assert caught.value.code == "eval_run_not_found"  # "eval run": no space in the code
    assert client.files.with_raw_response.list().headers["x-request-id"].startswith("req_")
    with pytest.raises(openai.AuthenticationError) as caught:
        client.with_options(api_key="wrong").files.list()
    assert caught.value.request_id.startswith("req_")

    engine.error = "raise"  # a deterministic 500: the SDK must not retry it
    retrying = client.with_options(max_retries=2)
    with pytest.raises(openai.InternalServerError) as caught:
        retrying.chat.completions.create(model="default", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.code == "engine_error"
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert len(engine.calls) == 1


def test_unexpected_errors_say_whether_a_retry_can_help(client, monkeypatch):
    from sqlalchemy.exc import OperationalError

    def locked(*args, **kwargs):
        raise OperationalError("SELECT", {}, Exception("database is locked"))

    monkeypatch.setattr(Store, "rows", locked)
    with pytest.raises(openai.InternalServerError) as caught:
        client.files.list()
    assert caught.value.code == "database_error" and caught.value.response.headers["x-should-retry"] == "true"
    assert caught.value.request_id.startswith("req_")
    monkeypatch.setattr(Store, "rows", lambda *args, **kwargs: 1 / 0)  # a bug: the same request fails again
    with pytest.raises(openai.InternalServerError) as caught:
        client.files.list()
    assert caught.value.code == "internal_error" and caught.value.response.headers["x-should-retry"] == "false"


def test_fine_tuned_models_can_be_deleted_and_checkpoint_permissions_are_refused(client, data_home):
    from openrft.service.jobs import set_status
    from openrft.training import create_job

    rows = data_home / "rows.jsonl"
    rows.parent.mkdir(parents=True, exist_ok=True)
    rows.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    job = create_job({"model": "default", "training_file": str(rows), "method": method()})
    run_dir = data_home / "runs" / job["id"]
    final, step = run_dir / "checkpoints" / "final", run_dir / "checkpoints" / "step-1"
    final.mkdir(parents=True)
    step.mkdir()
    ft = f"ft:default:openrft::{job['id'][6:14]}"
    (step / "checkpoint.json").write_text(json.dumps({
        "object": "fine_tuning.job.checkpoint", "id": "ftckpt-1", "created_at": 1, "step_number": 1,
        "fine_tuned_model_checkpoint": f"{ft}:ckpt-step-1", "fine_tuning_job_id": job["id"], "metrics": {}}))
    saved = json.loads((run_dir / "job.json").read_text())
    (run_dir / "job.json").write_text(json.dumps({**saved, "fine_tuned_model": ft}))
    set_status(run_dir, "succeeded", "done")
    assert {ft, f"{ft}:ckpt-step-1"} <= {m.id for m in client.models.list().data}

    deleted = client.models.delete(f"{ft}:ckpt-step-1")
    assert deleted.deleted is True and deleted.id == f"{ft}:ckpt-step-1"
    assert client.models.delete(ft).deleted is True
    assert not final.exists() and not step.exists()
    remaining = {m.id for m in client.models.list().data}
    assert ft not in remaining and f"{ft}:ckpt-step-1" not in remaining
    with pytest.raises(openai.NotFoundError):
        client.models.delete(ft)
    with pytest.raises(openai.PermissionDeniedError) as caught:
        client.models.delete("default")
    assert caught.value.code == "model_not_deletable"

    permissions = client.fine_tuning.checkpoints.permissions
    for call in (lambda: permissions.create(f"{ft}:ckpt-step-1", project_ids=["proj_1"]),
                 lambda: permissions.list(f"{ft}:ckpt-step-1"),
                 lambda: permissions.delete("perm_1", fine_tuned_model_checkpoint=f"{ft}:ckpt-step-1")):
        with pytest.raises(openai.BadRequestError) as caught:
            call()
        assert caught.value.code == "unsupported_endpoint" and "not supported" in caught.value.message


# --- chat completions ---

def test_chat_parameters_are_implemented_or_refused_by_name(client, engine):
    hello = [{"role": "user", "content": "hi"}]
    refused = {"functions": {"extra_body": {"functions": [{"name": "f", "parameters": {}}]}},
               "frequency_penalty": {"frequency_penalty": 0.5}, "presence_penalty": {"presence_penalty": -1},
               "logit_bias": {"logit_bias": {"42": 5}}, "top_logprobs": {"logprobs": True, "top_logprobs": 2},
               "store": {"store": True}, "audio": {"audio": {"voice": "alloy", "format": "mp3"}},
               "prediction": {"prediction": {"type": "content", "content": "x"}}}
    for param, extra in refused.items():
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(model="default", messages=hello, **extra)
        assert caught.value.param == param, param
        assert caught.value.code == "unsupported_parameter"
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="default", messages=hello, extra_body={"guided_regex": "x"})
    assert caught.value.param == "guided_regex"
    assert engine.calls == []  # nothing was generated for a refused request

    # tools reach the engine (tests/service/test_chat_tools.py runs them on the embedded model)
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    called = [{"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "done"}]
    client.chat.completions.create(model="default", messages=hello + called, tools=[tool], tool_choice="auto",
                                   parallel_tool_calls=False)
    prompts, params = engine.calls[-1]
    assert (params.tools, params.tool_choice, params.parallel_tool_calls) == ([tool], "auto", False)
    assert prompts[0][1]["tool_calls"] == called[0]["tool_calls"] and prompts[0][2]["tool_call_id"] == "call_1"

    efforts = {"none": None, "minimal": "low", "low": "low", "medium": "medium", "high": "high", "xhigh": "high"}
    for effort, level in efforts.items():
        client.chat.completions.create(model="default", messages=hello, reasoning_effort=effort)
        assert engine.calls[-1][1].reasoning_effort == level, effort

    client.chat.completions.create(model="default", messages=hello, top_p=0, temperature=0.9, user="u-1",
                                   frequency_penalty=0, logit_bias={})
    assert (engine.calls[-1][1].temperature, engine.calls[-1][1].top_p) == (0.0, 1.0)  # top_p 0: greedy

    parts = [{"role": "user", "content": ["Is ", {"type": "text", "text": "snow white?"}]}]
    client.chat.completions.create(model="default", messages=parts)
    assert engine.calls[-1][0] == [[{"role": "user", "content": "Is snow white?"}]]


def test_chat_stop_and_logprobs(client, engine):
    engine.text, engine.reasoning = "yes. And more", "hmm"
    hello = [{"role": "user", "content": "hi"}]
    answer = client.chat.completions.create(model="default", messages=hello, stop=["."], logprobs=True,
                                            top_logprobs=0)
    choice = answer.choices[0]
    assert choice.message.content == "yes" and choice.finish_reason == "stop"
    tokens = choice.logprobs.content
    assert "".join(t.token for t in tokens) == "yes"  # the reasoning segment and the cut tail are left out
    offset = len("<think>hmm</think>")
    assert [t.logprob for t in tokens] == [-0.25 * ((offset + k) % 4) for k in range(3)]
    assert all(t.top_logprobs == [] and bytes(t.bytes).decode() == t.token for t in tokens)

    engine.reasoning = ""
    stream = client.chat.completions.create(model="default", messages=hello, logprobs=True, stream=True)
    chunks = [c for c in stream if c.choices and c.choices[0].delta.content]
    assert "".join(c.choices[0].delta.content for c in chunks) == "yes. And more"
    assert ["".join(t.token for t in c.choices[0].logprobs.content) for c in chunks] == list("yes. And more")
    no_logprobs = client.chat.completions.create(model="default", messages=hello, stop="And")
    assert no_logprobs.choices[0].logprobs is None and no_logprobs.choices[0].message.content == "yes. "


# --- responses ---

def test_responses_create_and_stream(client, engine):
    engine.reasoning = "think"
    fmt = {"type": "json_schema", "name": "answer", "schema": SCHEMA, "strict": True}
    response = client.responses.create(model="default", input="Is snow white?", instructions="Answer in JSON.",
                                       text={"format": fmt}, reasoning={"effort": "xhigh"}, max_output_tokens=40)
    prompts, params = engine.calls[-1]
    assert prompts == [[{"role": "developer", "content": "Answer in JSON."},
                        {"role": "user", "content": "Is snow white?"}]]
    assert params.response_format == {"type": "json_schema", "json_schema": {"name": "answer", "schema": SCHEMA,
                                                                             "strict": True}}
    assert (params.reasoning_effort, params.max_tokens) == ("high", 40)
    assert response.object == "response" and response.status == "completed"
    assert response.output_text == '{"answer": "yes"}'
    assert [item.type for item in response.output] == ["reasoning", "message"]
    assert response.output[0].content[0].text == "think"
    assert response.usage.output_tokens_details.reasoning_tokens == len("think")

    engine.reasoning, engine.finish_reason = "", "length"
    messages = [{"role": "user", "content": [{"type": "input_text", "text": "Is fire "}, "cold?"]}]
    events = list(client.responses.create(model="default", input=messages, stream=True))
    assert engine.calls[-1][0] == [[{"role": "user", "content": "Is fire cold?"}]]
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.incomplete"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == '{"answer": "yes"}'
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[-1].response.incomplete_details.reason == "max_output_tokens"

    for param, extra in {"tools[0].type": {"tools": [{"type": "file_search", "vector_store_ids": ["vs_1"]}]},
                         "previous_response_id": {"previous_response_id": "resp_1"},
                         "text.format.type": {"text": {"format": {"type": "grammar"}}}}.items():
        with pytest.raises(openai.BadRequestError) as caught:
            client.responses.create(model="default", input="hi", **extra)
        assert caught.value.param == param


# --- evals ---

def test_eval_runs_cancel_and_show_output_items_while_they_progress(client, store, monkeypatch):
    import openrft.service.engine_cache as engine_cache
    import openrft.service.evals as service_evals

    fake = FakeEngine(text="not json", parse_error="not JSON: Expecting value")
    monkeypatch.setattr(engine_cache, "load_engine", lambda model: fake)
    monkeypatch.setattr(service_evals, "CHUNK_ROWS", 1)
    evaluation = client.evals.create(name="e", data_source_config={"type": "custom", "item_schema": {}},
                                     testing_criteria=[GRADER])
    items = [{"item": {"q": f"question {i}", "answer": "yes"}} for i in range(3)]
    source = {"type": "completions", "model": "default", "source": {"type": "file_content", "content": items},
              "input_messages": {"type": "template", "template": [
                  {"role": "user", "content": [{"type": "input_text", "text": "Q: "}, "{{item.q}}"]}]},
              "sampling_params": {"max_completion_tokens": 9, "top_p": 0}}
    queued = client.evals.runs.create(evaluation.id, data_source=source)
    assert client.evals.runs.cancel(queued.id, eval_id=evaluation.id).status == "canceled"

    seen = []
    real_generate = fake.generate

    def generate(prompts, params):  # each chunk's call: look at what the API shows so far
        seen.append(len(client.evals.runs.output_items.list(run.id, eval_id=evaluation.id).data))
        return real_generate(prompts, params)

    fake.generate = generate
    run = client.evals.runs.create(evaluation.id, data_source=source)
    assert Worker(store).run_once() == ("eval_run", run.id, "completed")
    assert seen == [0, 1, 2]  # the items of each graded chunk were listed before the next one ran
    assert fake.calls[0][0] == [[{"role": "user", "content": "Q: question 0"}]]
    assert (fake.calls[0][1].temperature, fake.calls[0][1].max_tokens) == (0.0, 9)
    done = client.evals.runs.retrieve(run.id, eval_id=evaluation.id)
    assert done.result_counts.total == 3 and done.result_counts.failed == 3
    assert done.per_testing_criteria_results[0].testing_criteria == evaluation.testing_criteria[0].id
    listed = client.evals.runs.output_items.list(run.id, eval_id=evaluation.id).data
    assert [i.datasource_item_id for i in listed] == [0, 1, 2]
    assert listed[0].sample.error.code == "sample_parse_error"
    assert listed[0].sample.error.message == "not JSON: Expecting value"


def sdk_problems(model, body: dict) -> set[tuple]:
    """Where `body` fails the SDK's own validation of `model` (the SDK's client parses without validating)."""
    from pydantic import ValidationError

    try:
        model.model_validate(body)
    except ValidationError as exc:
        return {tuple(error["loc"]) for error in exc.errors()}
    return set()


def test_queued_and_completed_eval_runs_and_their_items_are_the_sdk_s_objects(app, store, monkeypatch):
    """The eval.run of a queued and of a completed run, and an output item, validate as the SDK's types, but for
    the nulls openrft returns where the SDK's types say a value (no error, no report, no usage yet)."""
    from openai.types.evals.run_retrieve_response import RunRetrieveResponse
    from openai.types.evals.runs.output_item_retrieve_response import OutputItemRetrieveResponse

    import openrft.service.engine_cache as engine_cache
    from openrft.runs import EvalRun, OutputItem

    monkeypatch.setattr(engine_cache, "load_engine", lambda model: FakeEngine(parse_error="not JSON"))
    http = TestClient(app, headers={"Authorization": f"Bearer {KEY}"})
    evaluation = http.post("/v1/evals", json={"data_source_config": {"type": "custom", "item_schema": {}},
                                              "testing_criteria": [GRADER]}).json()
    source = {"type": "completions", "model": "default",
              "source": {"type": "file_content", "content": [{"item": {"q": "snow?", "answer": "yes"}}]},
              "input_messages": {"type": "template", "template": [{"role": "user", "content": "{{item.q}}"}]},
              "sampling_params": {"max_completion_tokens": 9, "seed": 5}}
    runs = f"/v1/evals/{evaluation['id']}/runs"
    queued = http.post(runs, json={"name": "r", "data_source": source}).json()
    assert queued["status"] == "queued" and EvalRun.model_validate(queued).to_dict() == queued
    assert sdk_problems(RunRetrieveResponse, queued) == {
        ("error",), ("report_url",), ("per_model_usage",), ("per_testing_criteria_results",)}
    assert (queued["error"], queued["report_url"], queued["per_model_usage"]) == (None, None, None)
    assert Worker(store).run_once() == ("eval_run", queued["id"], "completed")
    done = http.get(f"{runs}/{queued['id']}").json()
    assert done["status"] == "completed" and EvalRun.model_validate(done).to_dict() == done
    assert sdk_problems(RunRetrieveResponse, done) == {("error",), ("report_url",)}
    assert done["per_testing_criteria_results"] == [
        {"testing_criteria": evaluation["testing_criteria"][0]["id"], "passed": 0, "failed": 1}]
    assert done["data_source"] == source and done["per_model_usage"][0]["model_name"] == "fake"
    [item] = http.get(f"{runs}/{queued['id']}/output_items").json()["data"]
    assert sdk_problems(OutputItemRetrieveResponse, item) == set()
    assert item["sample"]["error"] == {"code": "sample_parse_error", "message": "not JSON"}
    assert OutputItem.model_validate({**item, "sample": {**item["sample"], "error": "not JSON"}}).to_dict() == \
        {**item, "sample": {**item["sample"], "error": "not JSON"}}  # the file's item, error as text


def test_the_responses_data_source_is_sampled_as_the_responses_api(client, store, monkeypatch):
    import openrft.service.engine_cache as engine_cache

    fake = FakeEngine()
    monkeypatch.setattr(engine_cache, "load_engine", lambda model: fake)
    evaluation = client.evals.create(data_source_config={"type": "custom", "item_schema": {}},
                                     testing_criteria=[GRADER])
    fmt = {"type": "json_schema", "name": "answer", "schema": SCHEMA, "strict": True}
    source = {"type": "responses", "model": "default",
              "source": {"type": "file_content", "content": [{"item": {"q": "Is snow white?", "answer": "yes"}}]},
              "input_messages": {"type": "template", "template": [{"role": "user", "content": "{{item.q}}"}]},
              "sampling_params": {"text": {"format": fmt}, "reasoning_effort": "minimal"}}
    run = client.evals.runs.create(evaluation.id, data_source=source)
    Worker(store).run_once()
    params = fake.calls[0][1]
    assert params.response_format["json_schema"]["schema"] == SCHEMA and params.reasoning_effort == "low"
    assert client.evals.runs.retrieve(run.id, eval_id=evaluation.id).result_counts.passed == 1

    tool = {"type": "function", "name": "f", "parameters": {"type": "object"}}
    client.evals.runs.create(evaluation.id, data_source={**source, "sampling_params": {"tools": [tool]}})
    Worker(store).run_once()  # the Responses API's flat tools reach the engine in the chat shape
    chat_shape = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    assert fake.calls[-1][1].tools == [chat_shape]
    with pytest.raises(openai.BadRequestError) as caught:
        client.evals.runs.create(evaluation.id, data_source={
            **source, "sampling_params": {"tools": [tool, tool]}})
    assert caught.value.param == "data_source.sampling_params.tools[1].name"


# --- jobs ---

def test_job_creation_checks_the_model_the_grader_and_the_integrations(client):
    train = upload(client)
    for model in ("no-such-model", "/etc"):
        with pytest.raises(openai.BadRequestError) as caught:
            client.fine_tuning.jobs.create(model=model, training_file=train, method=method())
        assert (caught.value.param, caught.value.code) == ("model", "model_not_found")
    label = {"type": "label_model", "name": "l", "model": "default", "labels": ["a", "b"], "passing_labels": ["a"],
             "input": [{"role": "user", "content": "{{sample.output_text}}"}]}
    with pytest.raises(openai.BadRequestError) as caught:
        client.fine_tuning.jobs.create(model="default", training_file=train, method=method(label))
    assert caught.value.param == "method.reinforcement.grader" and "label_model" in caught.value.message
    with pytest.raises(openai.BadRequestError) as caught:  # wandb is not installed in the test environment
        client.fine_tuning.jobs.create(model="default", training_file=train, method=method(),
                                       integrations=[{"type": "wandb", "wandb": {"project": "p"}}])
    assert caught.value.param == "integrations" and "wandb" in caught.value.message


def test_what_openrft_emits_is_accepted_back(client, data_home):
    train = upload(client)
    judge = {"type": "score_model", "name": "judge", "model": "default", "range": None, "sampling_params": None,
             "input": [{"role": "user",
                        "content": ["Score ", {"type": "input_text", "text": "{{sample.output_text}}"}]}]}
    multi = {"type": "multi", "name": "m", "graders": {"exact": GRADER, "judge": judge},
             "calculate_output": "0.5 * exact + 0.5 * judge", "id": "m-123"}
    first = client.fine_tuning.jobs.create(model="default", training_file=train,
                                           method=method(multi, batch_size=1, n_epochs=None))
    dumped = first.to_dict(warnings=False)
    assert dumped["method"]["reinforcement"]["hyperparameters"]["resolved"]["group_size"] >= 2
    for path in ("run_dir", "training_path", "validation_path", str(data_home)):
        assert path not in json.dumps(dumped), path
    # The job's own method (resolved hyperparameters and all), with the nulls an SDK dump adds.
    again = {**dumped["method"], "supervised": None, "dpo": None}
    again["reinforcement"]["grader"]["graders"]["exact"]["id"] = "exact-1"
    second = client.fine_tuning.jobs.create(model=first.model, training_file=train, method=again, seed=first.seed)
    hp = second.method.reinforcement.hyperparameters
    assert (hp.batch_size, hp.n_epochs) == (1, dumped["method"]["reinforcement"]["hyperparameters"]["n_epochs"])
    assert second.hyperparameters.batch_size == 1
    evaluation = client.evals.create(data_source_config={"type": "custom", "item_schema": {}},
                                     testing_criteria=[GRADER])
    returned = evaluation.testing_criteria[0].to_dict()
    assert client.evals.create(data_source_config={"type": "custom", "item_schema": {}},
                               testing_criteria=[returned]).testing_criteria[0].name == "exact"


def test_a_job_s_eval_results_timing_and_grader_usage(client, store, data_home):
    from openrft.evals import run_eval
    from openrft.runs import EventLog
    from openrft.service.jobs import set_status

    train = upload(client)
    job = client.fine_tuning.jobs.create(model="default", training_file=train, validation_file=train,
                                         method=method(batch_size=2, n_epochs=2))
    evaluation = client.evals.retrieve(job.eval_id)
    assert evaluation.testing_criteria[0].name == "exact"
    assert evaluation.metadata == {"fine_tuning_job_id": job.id}
    assert client.evals.runs.list(job.eval_id).data == []

    run_dir = data_home / "runs" / job.id
    assert store.claim(WorkerId.this_process(), ("job",)) == ("job", job.id)  # as a worker would
    log = EventLog(run_dir)
    group = job.method.reinforcement.hyperparameters.to_dict()["resolved"]["group_size"]
    for step in (1, 2):
        run_eval(ROWS, engine=FakeEngine(), grader=GRADER,
                 params=SamplingParams(response_format={"type": "json_object"}), out_dir=run_dir / "evals" / f"step-{step}", name=f"step-{step}", eval_id=job.eval_id,
                 progress=False, plots=False)
        log.emit(f"Step {step}/4", type="metrics", data={
            "step": step, "total_steps": 4, "train_mean_reward": 0.5, "full_valid_mean_reward": 1.0,
            "scores": {"train_reward_mean": 0.5, "valid_reward_mean": 1.0,
                       "graders": [{"name": "exact", "type": "string_check", "train_reward_mean": 0.5,
                                    "valid_reward_mean": 1.0}]},
            "usage": {"samples": {}, "graders": []}, "timing": {"step": {"full_iteration": 10.0}}})
        if step == 1:
            running = client.fine_tuning.jobs.retrieve(job.id)
            assert running.status == "running" and running.result_files == []
            last = client.fine_tuning.jobs.list_events(job.id, limit=1).data[0]
            assert running.estimated_finish == last.created_at + 30  # 3 steps left at 10 s each

    runs = client.evals.runs.list(job.eval_id).data
    assert [r.name for r in runs] == ["step-1", "step-2"] and all(r.status == "completed" for r in runs)
    assert (runs[0].result_counts.passed, runs[0].result_counts.failed) == (1, 1)  # it always answers yes
    assert runs[0].per_testing_criteria_results[0].testing_criteria == evaluation.testing_criteria[0].id
    items = client.evals.runs.output_items.list(runs[1].id, eval_id=job.eval_id).data
    assert [i.status for i in items] == ["pass", "fail"] and items[0].datasource_item == {"answer": "yes"}

    usage = client.fine_tuning.jobs.list_events(job.id, limit=1).data[0].data["usage"]["graders"]
    assert usage[0]["name"] == "exact" and usage[0]["train_calls"] == 2 * group
    assert usage[0]["valid_calls"] == 2 and usage[0]["train_prompt_tokens_count"] is None

    store.release("job", job.id, "succeeded")
    set_status(run_dir, "succeeded", "Fine-tuning job successfully completed")
    done = client.fine_tuning.jobs.retrieve(job.id)
    assert done.estimated_finish is None and len(done.result_files) == 1
    results = client.files.retrieve(done.result_files[0])
    assert results.purpose == "fine-tune-results" and results.filename == "step_metrics.csv"
    lines = client.files.content(done.result_files[0]).text.splitlines()
    assert lines[0].split(",")[:3] == ["step", "train_mean_reward", "full_valid_mean_reward"]
    assert "graders/exact/valid_reward_mean" in lines[0]
    assert [line.split(",")[0] for line in lines[1:]] == ["1", "2"]
    assert client.fine_tuning.jobs.retrieve(job.id).result_files == done.result_files  # written once


def test_a_wandb_integration_starts_the_wandb_tracker(data_home, tmp_path, monkeypatch):
    from openrft.training import create_job
    from openrft.training.trackers import Trackers

    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    integration = {"type": "wandb", "wandb": {"project": "migrated", "entity": "team", "tags": ["rft"]}}
    job = create_job({"model": "default", "training_file": str(rows), "method": method(),
                      "integrations": [integration], "openrft": {"trackers": []}})
    assert job["openrft"]["trackers"] == ["wandb"]
    assert job["integrations"] == [{"type": "wandb", "wandb": {**integration["wandb"], "name": None}}]

    started = []
    fake = types.ModuleType("wandb")
    fake.__spec__ = importlib.machinery.ModuleSpec("wandb", None)
    fake.init = lambda **kwargs: started.append(kwargs)
    fake.log = lambda metrics, step: None
    monkeypatch.setitem(sys.modules, "wandb", fake)
    Trackers(job["openrft"]["trackers"], tmp_path, job["id"], job)
    assert started[0]["project"] == "migrated" and started[0]["entity"] == "team"
    assert started[0]["tags"] == ["rft"] and started[0]["name"] == job["id"]

    with pytest.raises(Exception) as caught:
        create_job({"model": "default", "training_file": str(rows), "method": method(),
                    "integrations": [{"type": "wandb", "wandb": {}}]})
    assert "integrations.0.wandb.project" in str(caught.value)


def test_a_job_that_lost_its_run_directory_is_reported_without_its_path(client, store):
    train = upload(client)
    job = client.fine_tuning.jobs.create(model="default", training_file=train, method=method())
    run_dir = store.get(jobs, job.id)["run_dir"]
    (Path(run_dir) / "job.json").unlink()
    with pytest.raises(openai.NotFoundError) as caught:
        client.fine_tuning.jobs.retrieve(job.id)
    assert caught.value.code == "run_directory_missing" and run_dir not in caught.value.message
