"""score_model (§3.5) and label_model (§3.6): prompts, structured output, parsing and error mapping.

The judge here is a small real Engine that answers from a script (a test double of the judge, not of
the grader); the last test runs score_model on the embedded model when the transformers engine exists.
"""

import json

import pytest

from openrft.engines.base import Sample, SamplingParams
from openrft.graders import build_grader

from .conftest import make_sample


class ScriptedJudge:
    """An Engine whose answers come from `answer(prompt) -> Sample fields`; records what it was asked."""

    def __init__(self, answer, model_name="judge-model"):
        self.answer, self.model_name = answer, model_name
        self.calls: list[tuple[list, SamplingParams]] = []

    def generate(self, prompts, params):
        self.calls.append((prompts, params))
        out = []
        for index, prompt in enumerate(prompts):
            fields = self.answer(prompt)
            text = fields.pop("text", None)
            if text is None:
                text = json.dumps(fields.get("output_json"))
            out.append([Sample(prompt_index=index, output_text=text, prompt_tokens=20, completion_tokens=10,
                               model=self.model_name, latency_s=0.01, **fields)])
        return out


def judge_json(result):
    return lambda prompt: {"output_json": {"steps": [{"description": "compare", "conclusion": "ok"}], "result": result}}


SCORE = {"type": "score_model", "name": "judge", "model": "judge-model",
         "input": [{"role": "developer", "content": "Grade the answer from 0 to 1."},
                   {"role": "user", "content": [{"type": "input_text", "text": "Reference: {{ item.reference }}"},
                                                {"type": "input_text", "text": "Answer: {{ sample.output_text }}"}]}]}


def score(judge, **extra):
    return build_grader({**SCORE, **extra}, judge_engine_factory=lambda name: judge)


def test_score_model_reads_result_and_records_usage():
    judge = ScriptedJudge(judge_json(0.75))
    grade = score(judge).grade(make_sample("Paris"), {"reference": "Paris, France"})
    assert grade.reward == 0.75 and grade.error_kind is None
    assert grade.sampled_model_name == "judge-model"
    assert grade.token_usage == {"judge-model": {"prompt_tokens": 20, "completion_tokens": 10, "total_tokens": 30,
                                                 "cached_tokens": 0}}
    assert grade.execution_time == 0.01
    prompts, params = judge.calls[0]
    assert prompts[0] == [{"role": "system", "content": "Grade the answer from 0 to 1."},
                          {"role": "user", "content": "Reference: Paris, France\nAnswer: Paris"}]
    schema = params.response_format["json_schema"]["schema"]
    assert params.response_format["type"] == "json_schema"
    assert schema["required"] == ["steps", "result"] and schema["properties"]["result"]["type"] == "number"


def test_score_model_clips_to_range_and_takes_sampling_params():
    assert score(ScriptedJudge(judge_json(3.5))).grade(make_sample("x"), {"reference": "y"}).reward == 1.0
    assert score(ScriptedJudge(judge_json(-2))).grade(make_sample("x"), {"reference": "y"}).reward == 0.0
    judge = ScriptedJudge(judge_json(5))
    grader = score(judge, range=[1, 7], sampling_params={"temperature": 0.2, "max_completions_tokens": 64, "seed": 1})
    assert grader.grade(make_sample("x"), {"reference": "y"}).reward == 5.0
    params = judge.calls[0][1]
    assert (params.temperature, params.max_tokens, params.seed) == (0.2, 64, 1)


def test_a_group_is_one_judge_call():
    judge = ScriptedJudge(lambda prompt: {"output_json": {"steps": [], "result": 1.0 if "good" in
                                                          prompt[1]["content"] else 0.0}})
    grades = score(judge).grade_many([(make_sample(text), {"reference": "r"}) for text in ("good", "bad", "good")])
    assert [grade.reward for grade in grades] == [1.0, 0.0, 1.0]
    assert len(judge.calls) == 1 and len(judge.calls[0][0]) == 3


@pytest.mark.parametrize("answer, kind", [
    ({"text": "I think it deserves a high score"}, "model_grader_parse_error"),  # non-numeric: 0 (§3.5)
    ({"output_json": {"steps": [], "result": "high"}}, "model_grader_parse_error"),
    ({"text": "{\"steps\": [{\"description\": \"the", "finish_reason": "length"}, "model_grader_parse_error"),
    ({"text": "", "error": "HTTP 503 from the judge", "finish_reason": "error"}, "model_grader_server_error"),
    ({"text": "I can't help with that.", "finish_reason": "content_filter"}, "model_grader_refusal_error"),
])
def test_judge_failures_are_graded_errors(answer, kind):
    grade = score(ScriptedJudge(lambda prompt: dict(answer))).grade(make_sample("x"), {"reference": "y"})
    assert grade.reward == 0.0 and grade.error_kind == kind
    assert grade.token_usage  # usage is recorded even for a failed answer


def test_a_result_given_before_the_token_limit_counts():
    answer = {"text": '{"result": 0.6, "steps": [{"description": "compare', "finish_reason": "length"}
    grade = score(ScriptedJudge(lambda prompt: dict(answer))).grade(make_sample("x"), {"reference": "y"})
    assert grade.reward == 0.6 and grade.error_kind is None


def test_a_judge_that_raises_is_a_server_error():
    def broken(name):
        raise ConnectionError("judge endpoint unreachable")

    grader = build_grader(SCORE, judge_engine_factory=broken)
    grade = grader.grade(make_sample("x"), {"reference": "y"})
    assert grade.error_kind == "model_grader_server_error"
    assert "unreachable" in grade.errors["model_grader_server_error_details"]


def test_template_errors_skip_the_judge():
    judge = ScriptedJudge(judge_json(1.0))
    grades = score(judge).grade_many([(make_sample("x"), {}), (make_sample("x"), {"reference": "y"})])
    assert grades[0].error_kind == "invalid_variable_error" and grades[1].reward == 1.0
    assert len(judge.calls[0][0]) == 1


LABEL = {"type": "label_model", "name": "sentiment", "model": "judge-model",
         "input": [{"role": "user", "content": "Classify the sentiment of: {{ sample.output_text }}"}],
         "labels": ["positive", "neutral", "negative"], "passing_labels": ["positive", "neutral"]}


@pytest.mark.parametrize("label, reward, kind", [
    ("positive", 1.0, None), ("neutral", 1.0, None), ("negative", 0.0, None),
    ("ecstatic", 0.0, "model_grader_parse_error"),
])
def test_label_model(label, reward, kind):
    judge = ScriptedJudge(judge_json(label))
    grade = build_grader(LABEL, judge_engine_factory=lambda name: judge).grade(make_sample("I love it"), {})
    assert grade.reward == reward and grade.error_kind == kind
    assert judge.calls[0][1].response_format["json_schema"]["schema"]["properties"]["result"]["enum"] == LABEL["labels"]
    if kind is None:
        assert grade.scores["label"] == label


def test_multi_with_a_model_sub_grader_reports_usage():
    judge = ScriptedJudge(judge_json(0.5))
    grader = build_grader({"type": "multi", "name": "m", "calculate_output": "0.5 * judge + 0.5 * exact",
                           "graders": {"judge": SCORE, "exact": {"type": "string_check", "name": "e",
                                                                 "input": "{{sample.output_text}}",
                                                                 "reference": "{{item.reference}}", "operation": "eq"}}},
                          judge_engine_factory=lambda name: judge)
    grade = grader.grade(make_sample("y"), {"reference": "y"})
    assert grade.reward == 0.75 and grade.sub_rewards == {"judge": 0.5, "exact": 1.0}
    assert grade.to_run_response()["model_grader_token_usage_per_model"]["judge-model"]["total_tokens"] == 30


@pytest.mark.slow  # minutes on a busy 2-core CPU (grammar compilation + constrained decoding)
def test_score_model_with_the_embedded_model(home):
    pytest.importorskip("openrft.engines.transformers", reason="the transformers engine has not landed yet")
    grader = build_grader({**SCORE, "model": "default", "sampling_params": {"max_completions_tokens": 96,
                                                                            "temperature": 0, "seed": 0}})
    grade = grader.grade(make_sample("Paris"), {"reference": "Paris"})
    # A 135M judge's judgement is not the point: the call, the structured output and the mapping are.
    assert grade.error_kind in (None, "model_grader_parse_error"), grade.errors
    assert 0.0 <= grade.reward <= 1.0
    assert grade.token_usage and grade.sampled_model_name == "default"
