"""The reward-hacking guards on metrics histories in the trainer's event shape: each guard fires on the
situation it is for, stays quiet on a healthy run, and is emitted once per onset or escalation."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from openrft.training.guards import check_step, evaluate, frequent_labels, total_variation

LABELS = ["trade", "law", "finance", "energy", "health", "transport"]
REFERENCE = {"trade": 0.35, "law": 0.2, "finance": 0.15, "energy": 0.1, "health": 0.1, "transport": 0.1}


def event(step: int, *, reward: float | None = None, valid: float | None = None, predicted: dict | None = None,
          reference: dict | None = None, length: float | None = None, truncated: float = 0.0,
          errors: dict | None = None, subs: dict | None = None, valid_predicted: dict | None = None) -> dict:
    """One metrics `data` dict shaped like openrft.training.metrics.metrics_event."""
    graders = [{"name": "f1_grader", "type": "multi"}]
    data: dict = {"step": step, "total_steps": 30, "scores": {"graders": graders},
                  "errors": {"graders": [{"name": "f1_grader", "type": "multi"}]}}
    if reward is not None:
        data["scores"]["train_reward_mean"] = graders[0]["train_reward_mean"] = reward
        data["train"] = {"loss": 0.0, "response_length_mean": length if length is not None else 20.0,
                         "truncated_share": truncated}
        for kind in ("sample_parse_error", "python_grader_runtime_error", "invalid_variable_error"):
            data["errors"]["graders"][0][f"train_{kind}_mean"] = (errors or {}).get(kind, 0.0)
        for name, value in (subs or {}).items():
            graders.append({"name": name, "type": "sub_grader", "train_reward_mean": value})
        if predicted is not None:
            data["train"]["predicted_label_counts"] = predicted
            data["train"]["reference_label_counts"] = reference or {}
    if valid is not None:
        data["scores"]["valid_reward_mean"] = valid
        data["valid"] = {"reward_mean": valid}
        if valid_predicted is not None:
            data["valid"]["predicted_label_counts"] = valid_predicted
    return data


def run(history: list[dict], reference=REFERENCE) -> list[dict]:
    """Call check_step after every step, as the trainer does, and collect what it emits."""
    emitted = []
    for n in range(1, len(history) + 1):
        emitted += check_step(history[:n], reference_label_freq=reference)
    return emitted


def drifting_predictions(steps: int, *, seed: int = 0, drift: bool = True) -> list[dict]:
    """A policy whose predicted labels move from the reference distribution onto the two frequent labels."""
    rng = np.random.default_rng(seed)
    ref = np.array([REFERENCE[label] for label in LABELS])
    greedy = np.array([0.7, 0.3, 0, 0, 0, 0])
    history = [event(0, valid=0.3)]
    for step in range(1, steps + 1):
        mix = min(1.0, step / steps * 1.2) if drift else 0.0
        p = (1 - mix) * ref + mix * greedy
        counts = rng.multinomial(64, p / p.sum())
        references = rng.multinomial(64, ref)
        history.append(event(step, reward=0.3 + 0.01 * step, length=20,
                             predicted={label: int(c) for label, c in zip(LABELS, counts) if c},
                             reference={label: int(c) for label, c in zip(LABELS, references) if c}))
    return history


def test_label_drift_toward_frequent_classes_warns_then_stops_once_each():
    emitted = [w for w in run(drifting_predictions(20)) if w["check"] == "label_drift_train"]
    assert [w["verdict"] for w in emitted] == ["warn", "stop"]
    warn, stop = emitted
    assert warn["step"] < stop["step"]
    moved_onto_frequent = warn["value"]["frequent_predicted_share"] - warn["value"]["frequent_predicted_share_start"]
    assert warn["value"]["tv"] >= 0.25 or moved_onto_frequent >= 0.3
    assert stop["value"]["tv"] >= 0.5 or stop["value"]["frequent_predicted_share"] >= 0.9
    assert warn["value"]["frequent_labels"] == ["trade", "law"]
    assert stop["value"]["frequent_predicted_share"] > 0.9
    assert "frequent" in warn["message"] and set(warn) == {"check", "verdict", "message", "step", "value"}


def test_label_drift_uses_the_sampled_reference_labels_without_a_reference_distribution():
    emitted = [w for w in run(drifting_predictions(20), reference=None) if w["check"] == "label_drift_train"]
    assert [w["verdict"] for w in emitted] == ["warn", "stop"]


def test_label_drift_on_validation_answers():
    history = [event(0, valid=0.3, valid_predicted={"trade": 35, "law": 20, "finance": 15, "energy": 10,
                                                    "health": 10, "transport": 10})]
    history.append(event(5, valid=0.35, valid_predicted={"trade": 60, "law": 25, "finance": 10, "energy": 5}))
    found = {w["check"]: w for w in evaluate(history, reference_label_freq=REFERENCE)}
    assert found["label_drift_valid"]["verdict"] == "warn"
    assert found["label_drift_valid"]["value"]["source"] == "valid"


def test_a_base_model_far_off_from_the_start_that_moves_a_little_is_warned_not_stopped():
    """The demo's case: the base model's validation answers were already 0.53 from the reference (position bias
    in the label list) and 0.64 four steps later: the move is worth a warning, the distance is not training's."""
    start = {"trade": 8, "law": 6, "finance": 4, "energy": 30, "health": 16, "transport": 0}
    later = {"trade": 4, "law": 2, "finance": 4, "energy": 40, "health": 14, "transport": 0}
    history = [event(0, valid=0.3, valid_predicted=start), event(4, valid=0.3, valid_predicted=later)]
    found = {w["check"]: w for w in evaluate(history, reference_label_freq=REFERENCE)}
    value = found["label_drift_valid"]["value"]
    assert value["tv_start"] >= 0.5 and value["tv"] - value["tv_start"] >= 0.1  # fires ...
    assert found["label_drift_valid"]["verdict"] == "warn"  # ... as a warning


def test_collapse_onto_rare_labels_is_drift_too():
    history = [event(0, valid=0.3)]
    for step in range(1, 10):
        rare = min(64, 8 * step)
        history.append(event(step, reward=0.3, predicted={"trade": 64 - rare, "energy": rare},
                             reference={"trade": 35, "law": 20, "energy": 9}))
    drift = [w for w in run(history) if w["check"] == "label_drift_train"]
    assert drift and "onto a few labels: 'energy'" in drift[0]["message"]


def test_stable_predictions_raise_no_label_drift_even_far_from_the_reference():
    stable = drifting_predictions(20, drift=False)
    assert not [w for w in run(stable) if w["check"].startswith("label_drift")]
    # A policy that is wrong from the start but does not move toward the frequent labels: not drift.
    history = [event(s, reward=0.3, predicted={"energy": 50, "health": 14}) for s in range(1, 10)]
    assert not run(history)


def test_label_drift_from_far_elsewhere_onto_the_frequent_classes():
    """A policy that starts on a rare label (already far from the reference) and moves onto the most frequent one:
    the distance from the reference does not grow, the hack is there all the same."""
    history = []
    for step in range(1, 13):
        frequent = min(64, 6 * step)
        history.append(event(step, reward=0.2 + 0.05 * step, predicted={"energy": 64 - frequent, "trade": frequent}))
    drift = [w for w in run(history) if w["check"] == "label_drift_train"]
    assert drift and "toward the frequent classes: 'trade', 'law'" in drift[0]["message"]
    assert drift[0]["value"]["tv"] < drift[0]["value"]["tv_start"] + 0.1  # the distance alone would not have fired


@pytest.mark.parametrize("per_step", [3, 8, 12])
def test_small_batches_pool_more_steps_and_a_stable_policy_raises_no_drift(per_step):
    """Few predictions per step: the windows pool steps up to 48 labels each, so sampling noise is not drift
    (with 3-step windows of 8 predictions, a stable policy tripped the guard in 40% of 20-step runs)."""
    for seed in range(10):
        rng = np.random.default_rng(seed)
        ref = np.array([REFERENCE[label] for label in LABELS])
        history = [event(step, reward=0.3, predicted={label: int(c) for label, c in
                                                      zip(LABELS, rng.multinomial(per_step, ref)) if c})
                   for step in range(1, 21)]
        assert not [w for w in run(history) if w["check"].startswith("label_drift")], seed
    # The same few predictions per step, moving onto 'trade': found once the windows hold enough labels.
    history = [event(step, reward=0.3, predicted={"trade": per_step} if step > 10 else
                     dict(Counter(LABELS[i % len(LABELS)] for i in range(per_step)))) for step in range(1, 41)]
    drift = [w for w in run(history) if w["check"] == "label_drift_train"]
    assert drift and min(drift[0]["value"]["predictions"]) >= 48
    assert drift[0]["step"] >= 2 * -(-48 // per_step)


def test_a_guard_flickering_around_its_threshold_is_announced_once():
    lengths = [40, 41, 39, 14, 17, 14, 17, 14, 17, 14]  # the late mean crosses 40% of the start back and forth
    history = [event(s, reward=0.4, length=n) for s, n in enumerate(lengths, 1)]
    from openrft.training.guards import response_length
    fired = [bool(response_length(history[:n])) for n in range(1, len(history) + 1)]
    assert fired.count(True) > 1 and False in fired[fired.index(True):]  # it does flicker ...
    assert len([w for w in run(history) if w["check"] == "response_length"]) == 1  # ... and is announced once


def test_train_reward_rising_while_validation_is_flat_warns_and_falling_stops():
    rising = [0.2 + 0.03 * s for s in range(1, 16)]
    flat = [event(0, valid=0.30)] + [event(s, reward=r, valid=0.30 + 0.005 * (s // 5) if s % 5 == 0 else None)
                                     for s, r in enumerate(rising, 1)]
    emitted = [w for w in run(flat) if w["check"] == "overfitting"]
    assert [w["verdict"] for w in emitted] == ["warn"]
    assert emitted[0]["value"]["train_rise"] >= 0.1

    falling = [event(0, valid=0.30)] + [event(s, reward=r, valid=0.30 - 0.03 * (s // 5) if s % 5 == 0 else None)
                                        for s, r in enumerate(rising, 1)]
    emitted = [w for w in run(falling) if w["check"] == "overfitting"]
    assert emitted[-1]["verdict"] == "stop"

    healthy = [event(0, valid=0.30)] + [event(s, reward=r, valid=0.30 + 0.03 * s if s % 5 == 0 else None)
                                        for s, r in enumerate(rising, 1)]
    assert not [w for w in run(healthy) if w["check"] == "overfitting"]


@pytest.mark.parametrize("lengths, verdict, word", [
    ([40, 41, 39, 30, 20, 12, 10, 9], "warn", "collapse"),
    ([40, 41, 39, 20, 5, 1, 1, 1], "stop", "collapse"),
    ([10, 11, 10, 20, 30, 35, 36, 38], "warn", "grow"),
])
def test_response_length_collapsing_or_exploding(lengths, verdict, word):
    history = [event(s, reward=0.4, length=n) for s, n in enumerate(lengths, 1)]
    found = [w for w in run(history) if w["check"] == "response_length"]
    assert found and found[-1]["verdict"] == verdict and word in found[-1]["message"]


def test_answers_hitting_max_tokens_warn():
    shares = [0.05, 0.1, 0.05, 0.3, 0.6, 0.7, 0.8]
    history = [event(s, reward=0.4, length=40, truncated=t) for s, t in enumerate(shares, 1)]
    found = [w for w in run(history) if w["check"] == "response_length"]
    assert found and "max_tokens" in found[0]["message"]


def test_steady_lengths_raise_nothing():
    history = [event(s, reward=0.4, length=20 + (s % 3)) for s in range(1, 12)]
    assert not run(history)


def test_grader_error_rate_climbing_warns_then_stops():
    rates = [0.0, 0.0, 0.02, 0.05, 0.12, 0.15, 0.2, 0.35, 0.45, 0.5]
    history = [event(s, reward=0.4, errors={"python_grader_runtime_error": r}) for s, r in enumerate(rates, 1)]
    emitted = [w for w in run(history) if w["check"] == "grader_errors"]
    assert [w["verdict"] for w in emitted] == ["warn", "stop"]
    assert "python_grader_runtime_error" in emitted[0]["message"]
    assert "before the job fails at max_grader_error_share" in emitted[0]["message"]
    unparsed = [event(s, reward=0.4, errors={"sample_parse_error": r}) for s, r in enumerate(rates, 1)]
    emitted = [w for w in run(unparsed) if w["check"] == "grader_errors"]
    assert "do not count toward max_grader_error_share" in emitted[0]["message"]  # the trainer leaves them out
    steady = [event(s, reward=0.4, errors={"python_grader_runtime_error": 0.2}) for s in range(1, 10)]
    assert not [w for w in run(steady) if w["check"] == "grader_errors"]  # high but not climbing: the doctor's job


def test_reward_rising_while_a_component_falls_warns():
    history = [event(s, reward=0.3 + 0.03 * s, subs={"recall": 0.3 + 0.06 * s, "precision": 0.5 - 0.03 * s})
               for s in range(1, 10)]
    emitted = [w for w in run(history) if w["check"] == "components_disagree"]
    assert len(emitted) == 1 and emitted[0]["verdict"] == "warn"
    assert "'precision'" in emitted[0]["message"] and emitted[0]["value"]["components"]["recall"] > 0
    together = [event(s, reward=0.3 + 0.03 * s, subs={"recall": 0.3 + 0.03 * s, "precision": 0.5 + 0.01 * s})
                for s in range(1, 10)]
    assert not run(together)


def test_helpers():
    assert total_variation({"a": 1.0}, {"b": 1.0}) == 1.0
    assert total_variation(REFERENCE, REFERENCE) == 0.0
    assert frequent_labels(REFERENCE) == ["trade", "law"]
    assert frequent_labels({"a": 1.0, "b": 1.0}) == []
    assert check_step([]) == [] and check_step([event(0, valid=0.2)]) == []


def test_guards_read_the_events_the_trainer_writes():
    """Metrics `data` built by the trainer's own event code from graded rollouts: a policy drifting onto the
    most frequent label, graded by a grader that rewards predicting it, trips the label-drift guard."""
    import json

    from openrft.engines.base import SamplingParams
    from openrft.evals import generate_and_grade
    from openrft.graders import build_grader
    from openrft.training.metrics import metrics_event

    from .scripted import ScriptedEngine, rows

    rewards_frequent = {"type": "python", "name": "frequent",
                        "source": "def grade(sample, item):\n"
                                  "    labels = (sample['output_json'] or {}).get('labels') or []\n"
                                  "    return sum(l == 'trade' for l in labels) / max(1, len(labels))\n"}
    grader = build_grader(rewards_frequent)
    fmt = {"type": "json_schema", "json_schema": {"name": "l", "schema": {"type": "object"}}}
    labels = ["trade", "trade", "law", "finance", "energy", "health"]
    data = [{**r, "labels": [label]} for r, label in zip(rows(6), labels)]
    history = []
    for step in range(1, 9):
        frequent_share = min(1.0, step / 6)  # the policy moves onto 'trade', the most frequent label
        answers = [json.dumps({"labels": ["trade"]}) if k < 12 * frequent_share
                   else json.dumps({"labels": [LABELS[2 + k % 4]]}) for k in range(12)]
        rollouts, _ = generate_and_grade(data, engine=ScriptedEngine(answers), graders=[grader],
                                         criteria=[rewards_frequent], params=SamplingParams(n=2, response_format=fmt))
        history.append(metrics_event(step, 8, rollouts, None, {"response_length_mean": 8.0, "truncated_share": 0.0},
                                      {}, rewards_frequent))
    assert history[-1]["train"]["predicted_label_counts"] == {"trade": 12}
    emitted = run(history, reference=None)  # the reference: the labels of the rows the trainer sampled
    drift = [w for w in emitted if w["check"] == "label_drift_train"]
    assert drift and drift[-1]["verdict"] == "stop" and drift[-1]["value"]["frequent_labels"] == ["trade"]
    assert "toward the frequent classes" in drift[-1]["message"]
    assert history[-1]["scores"]["train_reward_mean"] > history[0]["scores"]["train_reward_mean"]
