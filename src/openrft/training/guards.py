"""Reward-hacking guards: checks of the metrics history that the trainer runs after every step.

`check_step(history, reference_label_freq=...)` reads the `data` of every metrics event so far (oldest
first, the shape of `openrft.training.metrics.metrics_event`) and returns warnings
`{"check", "verdict": "warn"|"stop", "message", "step", "value"}`. The trainer emits each as a
`level: "warn"` event with `data: {"guard": warning}` and the dashboard marks it. A warning is returned once,
at the step where its guard starts to fire or escalates from warn to stop (or fires again after `QUIET_STEPS`
quiet steps), so a lasting problem does not flood the event log; `evaluate(history)` gives every guard that
fires now.

Each guard compares an early window of steps with the latest window (means over `WINDOW` steps, since one
step's batch is small and noisy; label drift pools more steps until a window holds `MIN_PREDICTIONS` labels)
and states its thresholds below. Rewards are on OpenAI's 0–1 scale.

| guard | fires when | stop when |
|---|---|---|
| label_drift_train / _valid | the predicted-label distribution moved away from the reference one (total variation ≥ 0.25 and up ≥ 0.1 since the start), or onto the frequent labels, those above the average label's frequency (their predicted share up ≥ 0.3 since the start and ≥ 0.1 above their reference share); each window pools ≥ 48 predicted labels | distance ≥ 0.5 after growing ≥ 0.2, or 90% of the predictions on the frequent labels after growing ≥ 0.3 (a base model that starts far off is not stopped for a small move) |
| overfitting | train reward rose ≥ 0.1 while validation gained less than a quarter of that (≥ 3 validations) | validation fell ≥ 0.05 |
| response_length | mean answer length fell below 40% or rose above 2.5× its start, or half the answers hit max_tokens (from under a quarter) | answers under 2 tokens |
| grader_errors | the share of samples with a grader error reached 10%, up ≥ 5 points since the start | ≥ 30% (the trainer fails the job at max_grader_error_share, 50% by default) |
| components_disagree | the reward rose ≥ 0.05 while a sub-grader of a multi grader fell ≥ 0.05 | — |
"""  # noqa: E501 (a markdown table: its rows cannot wrap)

from __future__ import annotations

import math
from statistics import mean
from typing import Any, Callable

WINDOW = 3  # steps pooled into one estimate (early window vs latest window)

DRIFT_WARN = 0.25  # total variation distance, predicted vs reference label distribution
DRIFT_STOP = 0.5
DRIFT_RISE = 0.1  # the distance must have grown this much since the first window
DRIFT_STOP_RISE = 0.2  # stop: ... and this much
FREQUENT_EXCESS = 0.1  # the predicted share of the frequent labels exceeds their reference share by this much
FREQUENT_STOP = 0.9  # stop: nine predictions in ten are frequent labels
FREQUENT_RISE = 0.3  # or: their predicted share rose this much since the first window (the distance may not have)
MIN_PREDICTIONS = 48  # predicted labels each window pools at least (more steps when batches are small): with 8
#                       per step and 3-step windows, noise alone tripped the guard in 40% of 20-step runs of a
#                       stable policy; with these thresholds, in under 5% at any batch size

OVERFIT_MIN_VALIDATIONS = 3
OVERFIT_TRAIN_RISE = 0.1
OVERFIT_VALID_SHARE = 0.25  # validation "flat": it gained less than this share of the train rise
OVERFIT_VALID_DROP = 0.05  # stop: validation fell by this much

LENGTH_MIN_STEPS = 4
LENGTH_COLLAPSE = 0.4  # latest mean length below 40% of the first window's
LENGTH_EXPLODE = 2.5  # latest mean length above 2.5× the first window's
LENGTH_EMPTY = 2.0  # stop: answers of fewer tokens than this
TRUNCATED_WARN = 0.5  # half the answers cut at max_tokens ...
TRUNCATED_START = 0.25  # ... where fewer than a quarter were at the start

ERRORS_MIN_STEPS = 4
ERRORS_WARN = 0.1
ERRORS_RISE = 0.05
ERRORS_STOP = 0.3

COMPONENTS_MIN_STEPS = 4
COMPONENTS_RISE = 0.05  # the reward rose at least this much ...
COMPONENTS_FALL = 0.05  # ... while a sub-grader fell at least this much

SEVERITY = {"ok": 0, "warn": 1, "stop": 2}
QUIET_STEPS = WINDOW  # a guard announced within this many steps is not announced again at the same severity

Finding = dict  # {"verdict", "message", "value"}


def check_step(history: list[dict], *, reference_label_freq: dict[str, float] | None = None) -> list[dict]:
    """The new warnings at the latest step of `history`: guards that start to fire or escalate here."""
    if not history:
        return []
    step = _step_of(history[-1], len(history) - 1)
    warnings = []
    for name, guard in GUARDS.items():
        now = guard(history, reference_label_freq)
        if now is None:
            continue
        if _recent_severity(guard, history, reference_label_freq) >= SEVERITY[now["verdict"]]:
            continue
        warnings.append({"check": name, "verdict": now["verdict"], "message": now["message"], "step": step,
                         "value": now["value"]})
    return warnings


def _recent_severity(guard, history: list[dict], reference_label_freq) -> int:
    """The highest severity `guard` reached at the `QUIET_STEPS` steps before the latest one: a guard that
    flickers around its threshold (one step below it, then above again) is not announced twice."""
    found = (guard(history[:-k], reference_label_freq) for k in range(1, min(QUIET_STEPS, len(history) - 1) + 1))
    return max((SEVERITY[f["verdict"]] for f in found if f), default=0)


def evaluate(history: list[dict], *, reference_label_freq: dict[str, float] | None = None) -> list[dict]:
    """Every guard that fires on `history` as it stands (no de-duplication across steps)."""
    step = _step_of(history[-1], len(history) - 1) if history else 0
    out = []
    for name, guard in GUARDS.items():
        found = guard(history, reference_label_freq)
        if found:
            out.append({"check": name, "step": step, **found})
    return out


# --- the guards -------------------------------------------------------------------------------------------

def label_drift(history: list[dict], reference_label_freq: dict[str, float] | None, *, source: str = "train",
                window: int = WINDOW) -> Finding | None:
    """Predicted labels drifting away from the reference distribution, typically toward the frequent classes:
    the policy may be winning by guessing them.

    The predicted-label counts (`data.<source>.predicted_label_counts`) of the first and of the latest steps
    are pooled into two windows of at least `window` steps and `MIN_PREDICTIONS` labels each (small batches
    pool more steps, so that noise does not pass for drift), and compared with the reference distribution by
    total variation distance, TV = ½ Σ |p(l) − q(l)|. The reference is `reference_label_freq` (label →
    frequency, normalised here) or, without it, the reference labels of the rows sampled so far
    (`data.train.reference_label_counts`). It fires when the distance grew (a policy moving away from the
    reference) or when the frequent labels' predicted share rose well past their reference share (a policy
    moving onto them from anywhere, even from a distribution that was already far from the reference).
    """
    counts = [(data, data[source]["predicted_label_counts"]) for data in history
              if isinstance((data.get(source) or {}).get("predicted_label_counts"), dict)]
    spans = _windows([c for _, c in counts], window)
    if spans is None:
        return None
    reference = _distribution(reference_label_freq) if reference_label_freq else _distribution(
        _pooled([(data.get("train") or {}).get("reference_label_counts") or {} for data in history]))
    if not reference:
        return None
    early_counts = _pooled([c for _, c in counts[:spans[0]]])
    late_counts = _pooled([c for _, c in counts[-spans[1]:]])
    early, late = _distribution(early_counts), _distribution(late_counts)
    d_early, d_late = total_variation(early, reference), total_variation(late, reference)
    frequent = frequent_labels(reference)
    predicted_share = sum(late.get(label, 0.0) for label in frequent)
    early_share = sum(early.get(label, 0.0) for label in frequent)
    reference_share = sum(reference[label] for label in frequent)
    gained = sorted((label for label in late if late[label] > reference.get(label, 0.0)),
                    key=lambda label: reference.get(label, 0.0) - late[label])[:4]
    value = {"source": source, "tv": d_late, "tv_start": d_early, "frequent_labels": frequent,
             "frequent_predicted_share": predicted_share, "frequent_predicted_share_start": early_share,
             "frequent_reference_share": reference_share, "over_predicted": gained,
             "predictions": [sum(early_counts.values()), sum(late_counts.values())]}
    toward_frequent = predicted_share - reference_share >= FREQUENT_EXCESS
    moved_away = d_late >= DRIFT_WARN and d_late - d_early >= DRIFT_RISE
    moved_onto_frequent = toward_frequent and predicted_share - early_share >= FREQUENT_RISE
    if not (moved_away or moved_onto_frequent):
        return None
    early_steps = _span_text(counts[0][0], counts[spans[0] - 1][0])
    late_steps = _span_text(counts[-spans[1]][0], counts[-1][0])
    where = "training samples" if source == "train" else "validation answers"
    if toward_frequent:
        names = ", ".join(repr(label) for label in frequent[:4]) + (" …" if len(frequent) > 4 else "")
        shift = (f"toward the frequent classes: {names} get {predicted_share:.0%} of the predictions at {late_steps} "
                 f"against {reference_share:.0%} of the reference labels ({early_share:.0%} at {early_steps})")
    else:
        names = ", ".join(f"{label!r} {late[label]:.0%} (reference {reference.get(label, 0.0):.0%})"
                          for label in gained)
        shift = f"onto a few labels: {names} at {late_steps}"
    message = (f"Predicted labels in the {where} drift {shift}; total variation from the reference distribution "
               f"{d_late:.2f} (was {d_early:.2f} at {early_steps}). The policy may be gaining reward by guessing "
               "labels: compare with the most-frequent baseline, balance the labels, or reward precision.")
    # Stop only for a move training made: a base model far from the reference from the start (position bias in
    # the label list, say) that drifts a little further is a warning, not a reason to stop.
    stop = ((d_late >= DRIFT_STOP and d_late - d_early >= DRIFT_STOP_RISE)
            or (toward_frequent and predicted_share >= FREQUENT_STOP
                and predicted_share - early_share >= FREQUENT_RISE))
    return {"verdict": "stop" if stop else "warn", "message": message, "value": value}


def label_drift_valid(history: list[dict], reference_label_freq: dict[str, float] | None) -> Finding | None:
    """`label_drift` on the validation answers: a validation is one large sample, so a window may be one
    validation (when it holds `MIN_PREDICTIONS` labels)."""
    return label_drift(history, reference_label_freq, source="valid", window=1)


def overfitting(history: list[dict], reference_label_freq=None) -> Finding | None:  # noqa: ARG001 (GUARDS signature)
    """Train reward rising while validation reward stays flat (or falls): the policy fits the training prompts."""
    train = _series(history, "scores", "train_reward_mean")
    valid = _series(history, "scores", "valid_reward_mean")
    if len(valid) < OVERFIT_MIN_VALIDATIONS or len(train) < 2 * 2:
        return None
    w = max(2, min(WINDOW, len(train) // 3))
    train_rise = mean(v for _, v in train[-w:]) - mean(v for _, v in train[:w])
    valid_gain = valid[-1][1] - valid[0][1]
    value = {"train_rise": train_rise, "valid_change": valid_gain, "valid_first": valid[0][1],
             "valid_last": valid[-1][1], "validations": len(valid)}
    if train_rise < OVERFIT_TRAIN_RISE or valid_gain >= OVERFIT_VALID_SHARE * train_rise:
        return None
    verdict = "stop" if valid_gain <= -OVERFIT_VALID_DROP else "warn"
    trend = "fell" if valid_gain < 0 else "stayed flat"
    message = (f"Train reward rose by {train_rise:+.2f} while validation reward {trend} ({valid[0][1]:.2f} at step "
               f"{valid[0][0]} → {valid[-1][1]:.2f} at step {valid[-1][0]}): the policy is fitting the training "
               "prompts (or a grader loophole) rather than the task. Keep the best checkpoint by validation reward; "
               "consider fewer epochs or more data.")
    return {"verdict": verdict, "message": message, "value": value}


def response_length(history: list[dict], reference_label_freq=None) -> Finding | None:  # noqa: ARG001 (GUARDS signature)
    """Mean answer length collapsing (empty answers) or exploding (padding, answers cut at max_tokens)."""
    lengths = _series(history, "train", "response_length_mean")
    if len(lengths) < LENGTH_MIN_STEPS:
        return None
    w = min(WINDOW, len(lengths) // 2)
    early, late = mean(v for _, v in lengths[:w]), mean(v for _, v in lengths[-w:])
    truncated = _series(history, "train", "truncated_share")
    t_early = mean(v for _, v in truncated[:w]) if len(truncated) >= 2 * w else None
    t_late = mean(v for _, v in truncated[-w:]) if len(truncated) >= 2 * w else None
    value = {"length_start": early, "length_now": late, "truncated_start": t_early, "truncated_now": t_late}
    if late < LENGTH_EMPTY or (early > 0 and late < LENGTH_COLLAPSE * early):
        verdict = "stop" if late < LENGTH_EMPTY else "warn"
        message = (f"Answers collapse: mean length {late:.1f} tokens, down from {early:.1f}. Short or empty answers "
                   "that still earn reward point to a grader loophole (e.g. an empty prediction scoring well).")
        return {"verdict": verdict, "message": message, "value": value}
    if early > 0 and late > LENGTH_EXPLODE * early:
        message = (f"Answers grow: mean length {late:.1f} tokens, up from {early:.1f}. Padding answers to inflate a "
                   "lexical or recall-like component is a known reward hack.")
        return {"verdict": "warn", "message": message, "value": value}
    if t_late is not None and t_early is not None and t_late >= TRUNCATED_WARN and t_early < TRUNCATED_START:
        message = (f"{t_late:.0%} of the answers now hit max_tokens (from {t_early:.0%}): answers are growing past "
                   "the budget; truncated answers usually fail to parse and score 0.")
        return {"verdict": "warn", "message": message, "value": value}
    return None


def grader_errors(history: list[dict], reference_label_freq=None) -> Finding | None:  # noqa: ARG001 (GUARDS signature)
    """The share of samples with a grader error climbing: the policy found outputs the grader cannot handle."""
    rates = []
    for i, data in enumerate(history):
        rate = step_error_rate(data)
        if rate is not None:
            rates.append((_step_of(data, i), rate, data))
    if len(rates) < ERRORS_MIN_STEPS:
        return None
    w = min(WINDOW, len(rates) // 2)
    early, late = mean(r for _, r, _ in rates[:w]), mean(r for _, r, _ in rates[-w:])
    if late < ERRORS_WARN or late - early < ERRORS_RISE:
        return None
    kinds: dict[str, float] = {}
    for _, _, data in rates[-w:]:
        for kind, share in (_error_kinds(data) or {}).items():  # never None: rates holds steps with kinds
            kinds[kind] = kinds.get(kind, 0.0) + share / w
    top = max(kinds, key=kinds.__getitem__) if kinds else "unknown"
    if top == "sample_parse_error":  # the trainer leaves parse errors out of max_grader_error_share
        advice = ("Unparsed answers score 0 (often cut at max_tokens: see response_length); they do not count "
                  "toward max_grader_error_share, so the job runs on while they grow.")
    else:
        advice = ("Errors score 0; inspect the failing samples in the step's output before the job fails at "
                  "max_grader_error_share.")
    message = f"Grader errors climb: {late:.0%} of the samples (was {early:.0%}), mostly {top}. {advice}"
    return {"verdict": "stop" if late >= ERRORS_STOP else "warn", "message": message,
            "value": {"error_share": late, "error_share_start": early, "kinds": kinds}}


def components_disagree(history: list[dict], reference_label_freq=None) -> Finding | None:  # noqa: ARG001 (GUARDS signature)
    """The reward rising while a sub-grader of a multi grader falls: the formula is being gamed."""
    reward = _series(history, "scores", "train_reward_mean")
    if len(reward) < COMPONENTS_MIN_STEPS:
        return None
    w = min(WINDOW, len(reward) // 2)
    rise = mean(v for _, v in reward[-w:]) - mean(v for _, v in reward[:w])
    if rise < COMPONENTS_RISE:
        return None
    components: dict[str, list[float]] = {}
    for data in history:
        for entry in ((data.get("scores") or {}).get("graders") or [])[1:]:
            value = entry.get("train_reward_mean")
            if entry.get("name") and _number(value):
                components.setdefault(entry["name"], []).append(float(value))
    changes = {name: mean(values[-w:]) - mean(values[:w]) for name, values in components.items()
               if len(values) >= 2 * w}
    falling = {name: change for name, change in changes.items() if change <= -COMPONENTS_FALL}
    if not falling:
        return None
    worst = min(falling, key=falling.__getitem__)
    rising = [f"{name} {change:+.2f}" for name, change in changes.items() if change > 0]
    message = (f"Reward rose by {rise:+.2f} while sub-grader {worst!r} fell by {falling[worst]:+.2f}"
               + (f" ({', '.join(rising)})" if rising else "") + ": the policy trades one component for another the "
               "formula weighs more. Check that the calculate_output formula rewards what you want.")
    return {"verdict": "warn", "message": message, "value": {"reward_rise": rise, "components": changes}}


GUARDS: dict[str, Callable[[list[dict], dict | None], Finding | None]] = {
    "label_drift_train": label_drift,
    "label_drift_valid": label_drift_valid,
    "overfitting": overfitting,
    "response_length": response_length,
    "grader_errors": grader_errors,
    "components_disagree": components_disagree,
}


# --- helpers ----------------------------------------------------------------------------------------------

def total_variation(p: dict[str, float], q: dict[str, float]) -> float:
    """½ Σ |p(l) − q(l)| over the labels of both distributions: 0 identical, 1 disjoint."""
    return 0.5 * sum(abs(p.get(label, 0.0) - q.get(label, 0.0)) for label in set(p) | set(q))


def frequent_labels(reference: dict[str, float]) -> list[str]:
    """The labels more frequent than the average label of a distribution, most frequent first (none when uniform)."""
    average = sum(reference.values()) / len(reference) if reference else 0.0
    return [label for label, share in sorted(reference.items(), key=lambda kv: (-kv[1], kv[0]))
            if share > average + 1e-12]


def step_error_rate(data: dict) -> float | None:
    """The share of one step's training samples with a grader error (all kinds, parse errors included)."""
    kinds = _error_kinds(data)
    if kinds is None:
        return None
    return min(1.0, sum(kinds.values()))


def _error_kinds(data: dict) -> dict[str, float] | None:
    graders = (data.get("errors") or {}).get("graders") or []
    if not graders or not any(k.startswith("train_") and k.endswith("_mean") for k in graders[0]):
        return None
    return {key[len("train_"):-len("_mean")]: float(value) for key, value in graders[0].items()
            if key.startswith("train_") and key.endswith("_mean") and _number(value) and value > 0}


def _span_text(first: dict, last: dict) -> str:
    a, b = _step_of(first, 0), _step_of(last, 0)
    return f"step {a}" if a == b else f"steps {a}–{b}"


def _windows(counts: list[dict], window: int) -> tuple[int, int] | None:
    """How many leading and trailing entries of `counts` the early and late windows pool: the fewest holding
    `window` entries and `MIN_PREDICTIONS` labels each; None while the two would overlap."""
    def span(ordered: list[dict]) -> int:
        total = 0.0
        for n, c in enumerate(ordered, 1):
            total += sum(float(v) for v in c.values() if _number(v) and v > 0)
            if n >= window and total >= MIN_PREDICTIONS:
                return n
        return len(ordered) + 1

    first, last = span(counts), span(counts[::-1])
    return (first, last) if first + last <= len(counts) else None


def _distribution(counts: dict | None) -> dict[str, float]:
    counts = {str(k): float(v) for k, v in (counts or {}).items() if _number(v) and v > 0}
    total = sum(counts.values())
    return {k: v / total for k, v in counts.items()} if total > 0 else {}


def _pooled(counts: list[dict]) -> dict[str, float]:
    pooled: dict[str, float] = {}
    for c in counts:
        for label, n in c.items():
            if _number(n):
                pooled[label] = pooled.get(label, 0.0) + float(n)
    return pooled


def _series(history: list[dict], *path: str) -> list[tuple[int, float]]:
    """(step, value) for every entry of `history` where the nested key `path` holds a finite number."""
    out = []
    for i, data in enumerate(history):
        value: Any = data
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if _number(value):
            out.append((_step_of(data, i), float(value)))
    return out


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _step_of(data: dict, default: int) -> int:
    step = data.get("step")
    return step if isinstance(step, int) else default
