"""Done-when: the official `openai` package against `openrft serve` on loopback, with the embedded model.

One server (a subprocess, its own OPENRFT_HOME) serves the whole-workflow test and the bad-request test;
the restart test starts its own, kills it mid-job and starts another one on the same data directory.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

openai = pytest.importorskip("openai")

KEY = "sk-openrft-test"
QUESTIONS = [("Is the sky blue on a clear day?", "yes"), ("Is fire cold?", "no"), ("Do fish live in water?", "yes"),
             ("Can a cat fly without help?", "no"), ("Is snow white?", "yes"), ("Is the sun a planet?", "no")]
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string", "enum": ["yes", "no"]}},
          "required": ["answer"], "additionalProperties": False}
# The smallest job that still does everything: one step of 2 prompts x 2 samples of a few tokens.
TINY = {"max_tokens": 8, "validate_at_start": False, "trackers": [], "updates_per_batch": 1, "lora_rank": 4}
RESPONSE_FORMAT = {"type": "json_schema", "json_schema": {"name": "answer", "strict": True, "schema": SCHEMA}}
MULTI = {
    "type": "multi", "name": "yes-no",
    "graders": {
        "exact": {"type": "string_check", "name": "exact", "input": "{{sample.output_json.answer}}",
                  "reference": "{{item.answer}}", "operation": "eq"},
        "close": {"type": "text_similarity", "name": "close", "input": "{{sample.output_text}}",
                  "reference": "{{item.answer}}", "evaluation_metric": "fuzzy_match"},
    },
    "calculate_output": "0.8 * exact + 0.2 * close",
}


def rows(pairs) -> bytes:
    return "".join(json.dumps({"messages": [{"role": "user", "content": f"{q} Answer in JSON: yes or no."}],
                               "question": q, "answer": a}) + "\n" for q, a in pairs).encode()


def assert_answer(text: str, finish_reason: str) -> None:
    """A structured answer: JSON of the schema when it finished, a prefix of it when it ran out of tokens."""
    assert text.lstrip().startswith("{")
    if finish_reason == "stop":
        assert json.loads(text)["answer"] in ("yes", "no")
    else:
        assert finish_reason == "length"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """`python -m openrft serve` in a subprocess (its own process group), logging to a file."""

    def __init__(self, home: Path):
        self.home = home
        self.port = free_port()
        self.log = home / f"serve-{self.port}.log"
        env = {**os.environ, "OPENRFT_HOME": str(home), "OPENRFT_API_KEY": KEY, "TOKENIZERS_PARALLELISM": "false"}
        env.pop("OPENRFT_DATABASE_URL", None)
        with open(self.log, "w") as out:
            self.process = subprocess.Popen([sys.executable, "-m", "openrft", "serve", "--port", str(self.port),
                                             "--log-level", "warning"], env=env, stdout=out,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        self.client = openai.OpenAI(base_url=f"http://127.0.0.1:{self.port}/v1", api_key=KEY, max_retries=0,
                                    timeout=300)
        deadline = time.monotonic() + 120
        while True:
            try:
                self.client.files.list()
                return
            except openai.APIConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"openrft serve did not start:\n{self.log.read_text()[-3000:]}") from None
                time.sleep(0.5)

    def worker_pids(self) -> list[int]:
        found = []
        for proc in Path("/proc").iterdir():
            try:
                cmd = (proc / "cmdline").read_bytes().split(b"\0")
                if b"openrft.service.worker" in cmd and (proc / "status").read_text().find(
                        f"PPid:\t{self.process.pid}\n") >= 0:
                    found.append(int(proc.name))
            except (OSError, ValueError):
                continue
        return found

    def kill(self) -> None:
        """A crash: SIGKILL to the server and its workers."""
        for pid in self.worker_pids():
            _kill(pid)
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        for pid in self.worker_pids():
            _kill(pid)
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(40)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def wait_for(fetch, done, *, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}: last value {value}")
        time.sleep(1.0)


def test_the_whole_workflow_through_the_openai_sdk(server):
    client = server.client
    train = client.files.create(file=("train.jsonl", rows(QUESTIONS[:2])), purpose="fine-tune")
    valid = client.files.create(file=("valid.jsonl", rows(QUESTIONS[4:5])), purpose="fine-tune")
    assert client.files.retrieve(train.id).filename == "train.jsonl"

    assert client.fine_tuning.alpha.graders.validate(grader=MULTI).grader is not None
    graded = client.fine_tuning.alpha.graders.run(grader=MULTI, model_sample='{"answer": "yes"}',
                                                  item={"answer": "yes"})
    assert graded.reward == pytest.approx(0.8 + 0.2 * graded.sub_rewards["close"])
    assert graded.sub_rewards["exact"] == 1.0

    job = client.fine_tuning.jobs.create(
        model="default", training_file=train.id, validation_file=valid.id, suffix="e2e", seed=7,
        metadata={"suite": "service"},
        method={"type": "reinforcement", "reinforcement": {
            "grader": MULTI, "response_format": RESPONSE_FORMAT,
            "hyperparameters": {"batch_size": 2, "n_epochs": 1, "compute_multiplier": 0.25, "eval_samples": 1,
                                "eval_interval": 1}}},
        extra_body={"openrft": TINY})
    assert job.status == "queued" and job.id.startswith("ftjob-")
    assert job.method.reinforcement.model_extra["response_format"] == RESPONSE_FORMAT  # echoed
    job = wait_for(lambda: client.fine_tuning.jobs.retrieve(job.id), lambda j: j.status in ("succeeded", "failed"),
                   timeout=600, what="the job to finish")
    assert job.status == "succeeded", job.error
    assert job.fine_tuned_model.startswith("ft:default:openrft:e2e:")
    assert [j.id for j in client.fine_tuning.jobs.list(metadata={"suite": "service"}).data] == [job.id]

    events = client.fine_tuning.jobs.list_events(job.id, limit=100).data
    metrics = [e for e in events if e.type == "metrics"]
    assert [e.data["step"] for e in metrics] == [1]
    assert metrics[0].data["scores"]["valid_reward_mean"] is not None
    newest = client.fine_tuning.jobs.list_events(job.id, limit=1)
    assert newest.has_more and newest.data[0].id == events[0].id
    checkpoints = client.fine_tuning.jobs.checkpoints.list(job.id).data
    assert [c.step_number for c in checkpoints] == [1]
    shown = json.dumps(job.to_dict(warnings=False))
    assert "run_dir" not in shown and str(server.home) not in shown  # no server paths in the job object
    [step_run] = client.evals.runs.list(job.eval_id).data  # the job's eval: one run per validation step
    assert step_run.name == "step-1" and step_run.status == "completed"
    assert step_run.result_counts.total == 1  # one validation row, eval_samples 1
    step_items = client.evals.runs.output_items.list(step_run.id, eval_id=job.eval_id).data
    assert len(step_items) == 1 and step_items[0].results[0].name == "yes-no"
    results = client.files.content(job.result_files[0]).text.splitlines()
    assert results[0].startswith("step,train_mean_reward,full_valid_mean_reward") and results[1].startswith("1,")
    group_size = job.method.reinforcement.hyperparameters.to_dict()["resolved"]["group_size"]
    assert metrics[0].data["usage"]["graders"][0]["train_calls"] == 2 * group_size  # batch_size 2
    models = {m.id for m in client.models.list().data}
    assert {job.fine_tuned_model, checkpoints[0].fine_tuned_model_checkpoint} <= models

    question = [{"role": "user", "content": "Is water wet? Answer in JSON: yes or no."}]
    answer = client.chat.completions.create(model=job.fine_tuned_model, messages=question, max_tokens=24,
                                            response_format=RESPONSE_FORMAT, seed=1)
    choice = answer.choices[0]
    assert choice.message.role == "assistant" and answer.usage.completion_tokens > 0
    assert_answer(choice.message.content, choice.finish_reason)
    stream = client.chat.completions.create(model=checkpoints[-1].fine_tuned_model_checkpoint, messages=question,
                                            max_tokens=24, response_format=RESPONSE_FORMAT, stream=True,
                                            stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert_answer(text, finish[0])
    assert chunks[-1].usage.completion_tokens > 0

    evaluation = client.evals.create(
        name="yes-no", data_source_config={"type": "custom", "item_schema": {"type": "object"},
                                           "include_sample_schema": True},
        testing_criteria=[MULTI["graders"]["exact"]])
    run = client.evals.runs.create(evaluation.id, name="fine-tuned", data_source={
        "type": "completions", "model": job.fine_tuned_model, "source": {"type": "file_id", "id": train.id},
        "input_messages": {"type": "template", "template": [
            {"role": "user", "content": "{{item.question}} Answer in JSON: yes or no."}]},
        "sampling_params": {"max_completion_tokens": 12, "seed": 3, "response_format": RESPONSE_FORMAT}})
    run = wait_for(lambda: client.evals.runs.retrieve(run.id, eval_id=evaluation.id),
                   lambda r: r.status in ("completed", "failed"), timeout=300, what="the eval run")
    assert run.status == "completed", run.error
    assert run.result_counts.total == 2
    assert run.per_testing_criteria_results[0].testing_criteria == evaluation.testing_criteria[0].id
    items = client.evals.runs.output_items.list(run.id, eval_id=evaluation.id).data
    assert len(items) == 2 and all(i.run_id == run.id and i.status in ("pass", "fail") for i in items)
    assert all(i.results[0].name == "exact" for i in items)
    assert sum(i.status == "pass" for i in items) == run.result_counts.passed


def test_chat_and_responses_on_the_embedded_model(server):
    client = server.client
    question = [{"role": "user", "content": "Is water wet? Answer in JSON: yes or no."}]
    answer = client.chat.completions.create(model="default", messages=question, max_tokens=16, seed=2, top_p=0,
                                            response_format=RESPONSE_FORMAT, logprobs=True, stop=["no"])
    choice = answer.choices[0]
    assert "no" not in choice.message.content
    tokens = "".join(t.token for t in choice.logprobs.content)  # the answer's tokens, up to the stop sequence
    assert tokens.strip().startswith(choice.message.content.strip()) and tokens.lstrip().startswith("{")
    assert all(t.logprob <= 0 for t in choice.logprobs.content)
    greedy = client.chat.completions.create(model="default", messages=question, max_tokens=16, top_p=0, seed=9,
                                            response_format=RESPONSE_FORMAT, reasoning_effort="none")
    assert greedy.choices[0].message.content == client.chat.completions.create(
        model="default", messages=question, max_tokens=16, temperature=0, seed=5,
        response_format=RESPONSE_FORMAT).choices[0].message.content  # top_p 0 is greedy, whatever the seed
    lookup = {"type": "function", "function": {"name": "lookup", "parameters": {
        "type": "object", "properties": {"term": {"type": "string", "maxLength": 12}}, "required": ["term"],
        "additionalProperties": False}}}
    called = client.chat.completions.create(model="default", messages=question, tools=[lookup], seed=1,
                                            tool_choice="required", parallel_tool_calls=False, max_tokens=40)
    choice = called.choices[0]  # a required call: the grammar makes it valid (test_chat_tools.py has more)
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    [call] = choice.message.tool_calls
    assert call.function.name == "lookup" and set(json.loads(call.function.arguments)) == {"term"}

    fmt = {"type": "json_schema", "name": "answer", "schema": SCHEMA, "strict": True}
    response = client.responses.create(model="default", input="Is water wet?", instructions="Answer in JSON.",
                                       text={"format": fmt}, max_output_tokens=16)
    assert response.status in ("completed", "incomplete")
    assert_answer(response.output_text, "stop" if response.status == "completed" else "length")
    events = list(client.responses.create(model="default", input=question, text={"format": fmt},
                                          max_output_tokens=16, stream=True))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert events[-1].response.output_text == text and text.lstrip().startswith("{")

    evaluation = client.evals.create(data_source_config={"type": "custom", "item_schema": {"type": "object"},
                                                         "include_sample_schema": True},
                                     testing_criteria=[MULTI["graders"]["exact"]])
    run = client.evals.runs.create(evaluation.id, data_source={
        "type": "responses", "model": "default",
        "source": {"type": "file_content", "content": [{"item": {"question": "Is snow white?", "answer": "yes"}}]},
        "input_messages": {"type": "template", "template": [
            {"role": "user", "content": {"type": "input_text", "text": "{{item.question}} Answer in JSON."}}]},
        "sampling_params": {"max_completion_tokens": 12, "text": {"format": fmt}}})
    run = wait_for(lambda: client.evals.runs.retrieve(run.id, eval_id=evaluation.id),
                   lambda r: r.status in ("completed", "failed"), timeout=300, what="the responses eval run")
    assert run.status == "completed", run.error
    [item] = client.evals.runs.output_items.list(run.id, eval_id=evaluation.id).data
    assert item.sample.output[0].content.lstrip().startswith("{")


def test_bad_requests_get_openai_errors_through_the_sdk(server):
    client = server.client
    with pytest.raises(openai.AuthenticationError) as caught:
        openai.OpenAI(base_url=client.base_url, api_key="wrong", max_retries=0).files.list()
    assert caught.value.status_code == 401 and caught.value.code == "invalid_api_key"

    with pytest.raises(openai.BadRequestError) as caught:
        client.fine_tuning.jobs.create(model="default", training_file="file-doesnotexist",
                                       method={"type": "reinforcement", "reinforcement": {"grader": MULTI}})
    assert caught.value.param == "training_file"

    bad_grader = {**MULTI, "graders": {"exact": {**MULTI["graders"]["exact"], "operation": "equals"}}}
    with pytest.raises(openai.BadRequestError) as caught:
        client.fine_tuning.alpha.graders.validate(grader=bad_grader)
    assert caught.value.param == "grader.graders.exact.operation"

    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="default", messages=[])
    assert caught.value.param == "messages"

    with pytest.raises(openai.BadRequestError) as caught:
        client.post("/fine_tuning/alpha/graders/run", body={"grader": MULTI}, cast_to=object)
    assert caught.value.param == "model_sample" and caught.value.code == "missing_required_parameter"

    with pytest.raises(openai.NotFoundError) as caught:
        client.fine_tuning.jobs.retrieve("ftjob-doesnotexist")
    assert caught.value.code == "fine_tuning_job_not_found" and caught.value.request_id.startswith("req_")
    with pytest.raises(openai.BadRequestError) as caught:
        client.fine_tuning.jobs.create(model="/etc", training_file="file-doesnotexist",
                                       method={"type": "reinforcement", "reinforcement": {"grader": MULTI}})
    assert caught.value.param == "model"
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="ft:nothing:openrft::12345678",
                                       messages=[{"role": "user", "content": "hi"}])
    assert caught.value.code == "model_not_found"


def test_a_job_survives_a_server_crash(tmp_path, embedded_model):
    home = tmp_path / "home"
    (home / "models").mkdir(parents=True)
    (home / "models" / embedded_model.name).symlink_to(embedded_model)
    server = Server(home)
    try:
        client = server.client
        train = client.files.create(file=("train.jsonl", rows(QUESTIONS[:2])), purpose="fine-tune")
        job = client.fine_tuning.jobs.create(
            model="default", training_file=train.id, seed=3,
            method={"type": "reinforcement", "reinforcement": {
                "grader": MULTI["graders"]["close"],
                "hyperparameters": {"batch_size": 1, "n_epochs": 1, "compute_multiplier": 0.25, "eval_interval": 1}}},
            extra_body={"openrft": TINY})
        state = home / "runs" / job.id / "state" / "trainer_state.json"
        wait_for(lambda: json.loads(state.read_text())["step"] if state.is_file() else 0, lambda step: step >= 1,
                 timeout=600, what="the resume state of step 1")
        server.kill()  # a crash mid-job: the server and its workers die at once, the job is left `running`
        server = Server(home)
        client = server.client
        job = wait_for(lambda: client.fine_tuning.jobs.retrieve(job.id), lambda j: j.status in ("succeeded", "failed"),
                       timeout=600, what="the job to finish after the restart")
        assert job.status == "succeeded", job.error
        events = client.fine_tuning.jobs.list_events(job.id, limit=100).data
        messages = [e.message for e in events]
        assert any(m.startswith("Worker lost") for m in messages)
        assert any(m.startswith("Resumed from step 1") for m in messages)
        steps = [e.data["step"] for e in reversed(events) if e.type == "metrics"]
        assert steps == [1, 2]  # step 2 ran once, after the restart; step 1 was not redone
    finally:
        server.stop()
