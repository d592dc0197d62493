"""The token usage of model graders: per grader and sub-grader (openrft.graders.usage), in an eval run's
`per_model_usage`, and in a job's metrics events (`usage.graders`, through the official SDK)."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from openrft.engines.base import Sample, SamplingParams
from openrft.graders import build_grader
from openrft.service.app import create_app
from openrft.service.store import Store

openai = pytest.importorskip("openai")

KEY = "sk-usage"
ROWS = [{"messages": [{"role": "user", "content": "Capital of France?"}], "reference": "Paris"},
        {"messages": [{"role": "user", "content": "Capital of Italy?"}], "reference": "Rome"}]


def judge_input(what: str) -> list[dict]:
    return [{"role": "user", "content": f"Is {{{{ sample.output_text }}}} {what} {{{{ item.reference }}}}? Score 0-1."}]


MULTI = {"type": "multi", "name": "both", "calculate_output": "0.5 * strict + 0.5 * loose + 0 * exact", "graders": {
    "strict": {"type": "score_model", "name": "strict", "model": "judge-a", "input": judge_input("exactly")},
    "loose": {"type": "score_model", "name": "loose", "model": "judge-b", "input": judge_input("close to")},
    "exact": {"type": "string_check", "name": "exact", "input": "{{ sample.output_text }}",
              "reference": "{{ item.reference }}", "operation": "eq"}}}


class Judge:
    """A judge engine answering `{"result": 1}`, with `prompt_tokens` per prompt and 4 completion tokens."""

    def __init__(self, name: str, prompt_tokens: int):
        self.model_name, self.prompt_tokens, self.calls = name, prompt_tokens, 0

    def generate(self, prompts, params):
        self.calls += len(prompts)
        return [[Sample(prompt_index=i, output_text='{"steps": [], "result": 1}',
                        output_json={"steps": [], "result": 1}, prompt_tokens=self.prompt_tokens,
                        completion_tokens=4, model=self.model_name)] for i, _ in enumerate(prompts)]


class Policy:
    model_name = "policy"

    def generate(self, prompts, params):
        return [[Sample(prompt_index=i, output_text="Paris", prompt_tokens=9, completion_tokens=2, model="policy")
                 for _ in range(params.n)] for i, _ in enumerate(prompts)]


def built_multi():
    judges = {"judge-a": Judge("judge-a", 30), "judge-b": Judge("judge-b", 50)}
    return build_grader(MULTI, judge_engine_factory=lambda name: judges[name]), judges


def test_usage_entries_per_grader_and_sub_grader():
    from openrft.graders.usage import grader_usage_entries

    grader, _ = built_multi()
    grades = grader.grade_many([({"output_text": "Paris"}, {"reference": "Paris"})] * 3)
    from openrft.graders.usage import model_usage

    usage = {"samples": 3, "models": model_usage(grades)}
    assert usage["models"]["judge-a"] == {"prompt_tokens": 90, "completion_tokens": 12, "total_tokens": 102,
                                          "cached_tokens": 0, "calls": 3}
    entries = {e["name"]: e for e in grader_usage_entries(MULTI, {"train": None, "valid": usage})}
    assert entries["both"]["valid_prompt_tokens_count"] == 90 + 150
    assert entries["both"]["valid_prompt_tokens_mean"] == 80.0  # per graded sample
    assert entries["strict"]["valid_prompt_tokens_count"] == 90 and entries["strict"]["model"] == "judge-a"
    assert entries["loose"]["valid_completion_tokens_count"] == 12
    assert entries["exact"]["valid_prompt_tokens_count"] == 0  # no model, no tokens
    assert entries["both"]["train_prompt_tokens_count"] is None  # not known for that split
    shared = json.loads(json.dumps(MULTI))
    shared["graders"]["loose"]["model"] = "judge-a"
    entries = {e["name"]: e for e in grader_usage_entries(shared, {"valid": usage})}
    assert entries["strict"]["valid_prompt_tokens_count"] is None  # two sub-graders share judge-a


def test_an_eval_run_lists_the_judge_models_usage():
    from openrft.evals import run_eval

    grader, judges = built_multi()
    result = run_eval(ROWS, engine=Policy(), grader=MULTI, graders=[grader], params=SamplingParams(), runs=2,
                      progress=False, plots=False)
    usage = {u["model_name"]: u for u in result.run.to_dict()["per_model_usage"]}
    assert usage["policy"]["invocation_count"] == 4 and usage["policy"]["prompt_tokens"] == 36
    assert usage["judge-a"] == {"model_name": "judge-a", "invocation_count": 4, "prompt_tokens": 120,
                                "completion_tokens": 16, "total_tokens": 136, "cached_tokens": 0}
    assert usage["judge-b"]["prompt_tokens"] == 200 and judges["judge-b"].calls == 4
    assert result.summary["grader_usage"][0]["samples"] == 4


def test_a_job_s_metrics_events_carry_the_validation_judge_tokens(tmp_path, monkeypatch, embedded_model):
    from openrft.evals import run_eval
    from openrft.runs import EventLog

    home = tmp_path / "home"
    monkeypatch.setenv("OPENRFT_HOME", str(home))
    monkeypatch.delenv("OPENRFT_DATABASE_URL", raising=False)
    (home / "models").mkdir(parents=True)
    (home / "models" / embedded_model.name).symlink_to(embedded_model)
    client = openai.OpenAI(api_key=KEY, base_url="http://testserver/v1",
                           http_client=TestClient(create_app(Store(), api_key=KEY)), max_retries=0)
    grader_json = json.loads(json.dumps(MULTI).replace("judge-a", "default").replace("judge-b", "default"))
    grader_json["graders"]["loose"]["model"] = "default"
    content = "".join(json.dumps(r) + "\n" for r in ROWS).encode()
    file_id = client.files.create(file=("rows.jsonl", content), purpose="fine-tune").id
    job = client.fine_tuning.jobs.create(model="default", training_file=file_id, validation_file=file_id,
                                         method={"type": "reinforcement", "reinforcement": {"grader": grader_json}})
    run_dir = home / "runs" / job.id
    judge = Judge("default", 25)
    grader = build_grader(grader_json, judge_engine_factory=lambda name: judge)
    run_eval(ROWS, engine=Policy(), grader=grader_json, graders=[grader], params=SamplingParams(), runs=1,
             out_dir=run_dir / "evals" / "step-1", progress=False, plots=False)
    EventLog(run_dir).emit("Step 1/2", type="metrics", data={
        "step": 1, "total_steps": 2, "scores": {"train_reward_mean": 1.0, "valid_reward_mean": 1.0},
        "usage": {"samples": {}, "graders": [{"train_prompt_tokens_count": 123}]}})
    event = client.fine_tuning.jobs.list_events(job.id, limit=1).data[0]
    entries = {e["name"]: e for e in event.data["usage"]["graders"]}
    both = entries["both"]
    assert both["valid_calls"] == 2 and both["valid_prompt_tokens_count"] == 2 * 2 * 25  # 2 judges x 2 samples
    assert both["valid_completion_tokens_mean"] == 2 * 4.0
    assert both["train_prompt_tokens_count"] == 123  # what the trainer recorded in the event, kept
    assert entries["strict"]["train_prompt_tokens_count"] is None  # an event that records none: unknown
    assert entries["strict"]["valid_prompt_tokens_count"] is None  # strict and loose share one judge model
    assert entries["exact"]["valid_prompt_tokens_count"] == 0


def test_the_trainer_records_the_training_batch_judge_tokens():
    """The trainer's metrics event (`openrft.training.metrics.metrics_event`) carries `train_*` token counts per grader and
    sub-grader, from the grades of the step's rollouts; the service keeps them and adds the validation's."""
    from openrft.evals import generate_and_grade
    from openrft.training.metrics import metrics_event

    grader, _ = built_multi()
    rollouts, _ = generate_and_grade(ROWS, engine=Policy(), graders=[grader], criteria=[MULTI],
                                     params=SamplingParams(n=3))
    data = metrics_event(1, 2, rollouts, None, {}, {}, MULTI)
    entries = {e["name"]: e for e in json.loads(json.dumps(MULTI)).get("graders", {}).values()}
    recorded = data["usage"]["graders"]
    assert len(recorded) == 1 + len(entries)  # the multi grader, then its sub-graders in order
    assert all(set(e) <= {k for k in e if k.startswith("train_")} for e in recorded)
    both, strict, loose, exact = recorded
    assert both["train_prompt_tokens_count"] == 6 * (30 + 50) and both["train_prompt_tokens_mean"] == 80.0
    assert strict["train_prompt_tokens_count"] == 6 * 30 and loose["train_completion_tokens_count"] == 6 * 4
    assert exact["train_prompt_tokens_count"] == 0
