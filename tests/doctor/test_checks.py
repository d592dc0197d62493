"""Each doctor check on the situation it is for, built for real: real graders grading answers through the
eval path, real files, the trainer's own epoch order."""

from __future__ import annotations

import json

import pytest

from openrft.doctor import checks
from openrft.engines.base import SamplingParams
from openrft.evals import run_eval

from .scripted import ScriptedEngine, rows

EXACT = {"type": "string_check", "name": "exact", "input": "{{ sample.output_text }}", "reference": "{{ item.answer }}",
         "operation": "eq"}
FUZZY = {"type": "text_similarity", "name": "fuzzy", "input": "{{ sample.output_text }}",
         "reference": "{{ item.answer }}", "evaluation_metric": "fuzzy_match"}
ALWAYS_FAILS = {"type": "python", "name": "broken", "source": "def grade(sample, item):\n    return 1 / 0\n"}
LABELS_FORMAT = {"type": "json_schema", "json_schema": {"name": "labels", "strict": True, "schema": {
    "type": "object", "properties": {"labels": {"type": "array", "items": {"type": "string"}}},
    "required": ["labels"], "additionalProperties": False}}}


def evaluate(answers: list[str], grader: dict, *, n_rows: int = 4, runs: int = 4, **kwargs):
    return run_eval(rows(n_rows, answer="Paris"), engine=ScriptedEngine(answers), grader=grader,
                    params=SamplingParams(max_tokens=8), runs=runs, progress=False, **kwargs)


def flat(result) -> list[float]:
    return [g.reward for r in result.rollouts for g in r.grades[0]]


def test_a_binary_grader_warns_about_continuity_but_has_signal():
    result = evaluate(["Paris", "London"], EXACT)
    reward = result.summary["reward"]
    assert checks.grader_continuity(flat(result))["verdict"] == "warn"
    assert checks.baseline_reward(reward)["verdict"] == "ok"
    assert checks.zero_signal(reward, 4)["verdict"] == "ok"
    assert checks.headroom(reward)["verdict"] == "ok"


def test_a_continuous_grader_passes_continuity():
    result = evaluate(["Paris", "Pari", "Parys", "Lyon", "paris!"], FUZZY)
    found = checks.grader_continuity(flat(result))
    assert found["verdict"] == "ok" and found["value"]["distinct"] > 2


def test_a_model_that_never_scores_is_stopped_on_every_signal_check():
    result = evaluate(["Berlin"], EXACT)
    reward = result.summary["reward"]
    assert reward["mean"] == 0.0
    for found in (checks.baseline_reward(reward), checks.headroom(reward), checks.zero_signal(reward, 4),
                  checks.grader_continuity(flat(result))):
        assert found["verdict"] == "stop", found
        assert set(found) == {"check", "verdict", "reason", "value"}


def test_a_model_already_perfect_has_little_to_gain():
    result = evaluate(["Paris"], EXACT)
    assert checks.baseline_reward(result.summary["reward"])["verdict"] == "warn"
    assert checks.zero_signal(result.summary["reward"], 4)["verdict"] == "stop"


def test_a_grader_that_always_errors_is_a_stop():
    from openrft.doctor.report import _errors

    result = evaluate(["Paris"], ALWAYS_FAILS, n_rows=2, runs=2)
    figures = _errors(result)
    assert figures["rate"] == 1.0 and figures["by_kind"] == {"python_grader_runtime_error": 4}
    found = checks.grader_errors(figures, None, max_share=0.5)
    assert found["verdict"] == "stop" and "ZeroDivisionError" in found["reason"]
    clean = _errors(evaluate(["Paris"], EXACT, n_rows=2, runs=2))
    assert checks.grader_errors(clean, None, max_share=0.5)["verdict"] == "ok"


def test_a_grader_that_needs_the_response_format_warns():
    from openrft.doctor.report import _errors

    reads_json = {"type": "string_check", "name": "json", "input": "{{ sample.output_json.labels[0] }}",
                  "reference": "{{ item.answer }}", "operation": "eq"}
    shaped = run_eval(rows(2, answer="Paris"), engine=ScriptedEngine(['{"labels": ["Paris"]}']), grader=reads_json,
                      params=SamplingParams(response_format=LABELS_FORMAT), runs=2, progress=False)
    free = run_eval(rows(2, answer="Paris"), engine=ScriptedEngine(["Paris, I think"]), grader=reads_json,
                    params=SamplingParams(), runs=2, progress=False)
    found = checks.grader_errors(_errors(shaped), _errors(free), max_share=0.5)
    assert found["verdict"] == "warn" and "response_format" in found["reason"]
    assert found["value"]["with_response_format"] == 0.0 and found["value"]["without_response_format"] == 1.0


def test_parse_errors_with_and_without_the_response_format():
    free = checks.schema_parse_rate(['{"labels": ["a"]}', "labels: a", '{"labels": "a"}', '{"labels": []}'],
                                    LABELS_FORMAT)
    assert free == 0.5  # plain text and a string where the schema wants an array do not parse
    assert checks.parse_errors({"rate": 0.0, "truncated": 0.0}, {"rate": free})["verdict"] == "ok"
    assert checks.parse_errors({"rate": 0.0, "truncated": 0.0}, {"rate": 0.9})["verdict"] == "warn"
    truncated = checks.parse_errors({"rate": 0.7, "truncated": 0.7, "reward_parsed": 0.4, "reward_unparsed": 0.05},
                                    {"rate": 1.0})
    assert truncated["verdict"] == "warn" and "max_tokens" in truncated["reason"] and "0.050" in truncated["reason"]
    assert checks.parse_errors({"rate": 0.95, "truncated": 0.0}, {"rate": 1.0})["verdict"] == "stop"
    assert checks.parse_errors({"rate": 0.2, "truncated": 0.0}, {"rate": None})["verdict"] == "warn"
    assert checks.parse_errors(None, {"rate": None})["verdict"] == "ok"


def test_parse_figures_of_an_eval_run_split_rewards_by_parsed_and_unparsed():
    from openrft.doctor.report import _parse_figures

    says_paris = {**EXACT, "input": "{{ sample.output_text }}", "reference": '{"labels": ["Paris"]}'}
    result = run_eval(rows(2, answer="Paris"), engine=ScriptedEngine(['{"labels": ["Paris"]}', '{"labels": ["Par']),
                      grader=says_paris, params=SamplingParams(response_format=LABELS_FORMAT), runs=2, progress=False)
    figures = _parse_figures(result)
    assert figures == {"rate": 0.5, "truncated": 0.0, "reward_parsed": 1.0, "reward_unparsed": 0.0}
    assert checks.parse_errors(figures, {"rate": None})["verdict"] == "warn"


def test_a_grader_that_pays_broken_answers_more_is_flagged():
    from openrft.doctor.report import _parse_figures

    # Scores the answer text's length: the cut-off, unparsed answers are the longest and score the most.
    longer = {"type": "python", "name": "long", "source": "def grade(sample, item):\n"
              "    return min(1.0, len(sample['output_text']) / 40)\n"}
    answers = ['{"labels": ["a"]}'] * 19 + ['{"labels": ["a", "b", "c", "d", "e", "f", "g", "h", "i"']
    result = run_eval(rows(5), engine=ScriptedEngine(answers), grader=longer,
                      params=SamplingParams(response_format=LABELS_FORMAT), runs=4, progress=False)
    figures = _parse_figures(result)
    assert figures["rate"] == 0.05 and figures["reward_unparsed"] > figures["reward_parsed"]
    found = checks.parse_errors(figures, {"rate": None})
    assert found["verdict"] == "warn" and "reward hacking" in found["reason"]


def test_an_item_missing_a_grader_field_is_a_stop(tmp_path):
    from openrft.data import read_jsonl
    from openrft.data.validate import grader_item_fields

    data = rows(3, answer="Paris")
    del data[1]["answer"]
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in data))
    fields, problems = grader_item_fields(EXACT)
    found = checks.missing_fields([(str(path), read_jsonl(path)[0])], fields, problems)
    assert found["verdict"] == "stop" and found["value"] == {"answer": 1}
    assert f"{path}:2 lacks 'answer'" in found["reason"]
    data[1]["answer"] = "Lyon"
    path.write_text("".join(json.dumps(r) + "\n" for r in data))
    assert checks.missing_fields([(str(path), read_jsonl(path)[0])], fields)["verdict"] == "ok"
    bad = checks.missing_fields([], set(), grader_item_fields({"type": "string_check", "name": "x"})[1])
    assert bad["verdict"] == "stop" and "does not validate" in bad["reason"]


def test_an_imbalanced_file_warns_unless_the_trainer_balances_it():
    from openrft.data import dataset_stats
    from openrft.data.order import epoch_order

    data = rows(40, labels=["trade"]) + rows(8, labels=["energy"]) + rows(4, labels=["health"])
    data = [{**r, "id": f"r{i}"} for i, r in enumerate(data)]
    before = dataset_stats(data)
    for balance, verdict in ((False, "warn"), (True, "ok")):
        order = epoch_order(data, n_epochs=1, seed=3, balance=balance, label_key="labels")
        after = dataset_stats([data[i] for i in order])
        found = checks.label_balance(before, after, balance=balance)
        assert found["verdict"] == verdict, found
        assert found["value"]["before"] == 10.0 and found["value"]["most_frequent"] == "trade"
    assert found["value"]["after"] < 3.0
    assert checks.label_balance(None, None, balance=True)["verdict"] == "ok"


def test_guessing_the_frequent_labels_beats_a_model_that_answers_wrongly():
    from openrft.graders import ready_grader

    data = [{**r, "labels": ["trade"] if i % 4 else ["trade", "energy"]} for i, r in enumerate(rows(8))]
    result = run_eval(data, engine=ScriptedEngine(['{"labels": ["health"]}', '{"labels": ["energy"]}']),
                      grader=ready_grader("multilabel_f1"), params=SamplingParams(response_format=LABELS_FORMAT),
                      runs=2, labels=["trade", "energy", "health"], progress=False)
    found = checks.guessing_baseline(result.summary)
    assert found["verdict"] == "warn"
    assert found["value"]["most_frequent"] > found["value"]["model"]
    assert "Judge a reward gain against this baseline" in found["reason"]


def test_the_estimate_scales_measured_speeds_by_the_hyperparameters():
    from openrft.doctor.estimate import job_estimate

    est = job_estimate(total_steps=24, batch_size=4, group_size=8, updates_per_batch=2, eval_interval=6,
                       eval_samples=3, validate_at_start=True, n_valid=40, sampling_group_s=2.0, grading_group_s=0.5,
                       training_group_s=1.0, optimizer_s=0.1, completion_tokens_mean=20, prompt_tokens_mean=100,
                       device="test")
    assert est["validations"] == 5  # steps 6, 12, 18, 24 and the base model at step 0
    assert est["per_step_s"] == {"sampling": 8.0, "grading": 2.0, "training": pytest.approx(8.2),
                                 "total": pytest.approx(18.2)}
    assert est["validation_s"] == pytest.approx(40 * 3 * (2.0 + 1.5) / 8)
    assert est["total_s"] == pytest.approx(24 * 18.2 + 5 * est["validation_s"])
    assert est["tokens"]["trained"] == 24 * 4 * 8 * 20
    assert est["tokens"]["sampled"] == (24 * 4 * 8 + 5 * 40 * 3) * 20
    assert checks.estimate_check(est)["verdict"] == "ok"
    long = job_estimate(**{**dict(total_steps=2000, batch_size=16, group_size=8, updates_per_batch=2, eval_interval=100,
                                  eval_samples=3, validate_at_start=True, n_valid=40, sampling_group_s=60.0,
                                  grading_group_s=1.0, training_group_s=10.0, optimizer_s=0.1,
                                  completion_tokens_mean=20, prompt_tokens_mean=100, device="test")})
    assert checks.estimate_check(long)["verdict"] == "warn"
