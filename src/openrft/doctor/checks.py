"""The doctor's checks: each a small function of measured figures returning one verdict.

Every check returns `{"check": name, "verdict": "ok"|"warn"|"stop", "reason": plain words, "value": figures}`.
"stop" means the job would waste its compute as it stands (no learning signal, a grader that fails, data
the trainer refuses); "warn" means it can run but is likely to learn little or to learn a shortcut.
Rewards are read on OpenAI's 0–1 scale. The thresholds are module constants, stated with each check.

The figures come from `openrft.evals.run_eval` summaries (`summary["reward"]` is
`openrft.evals.metrics.reward_stats`) and from the data files; `openrft.doctor.report` gathers them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

BASELINE_ZERO = 0.02  # mean reward below this: nothing to reinforce (RFT cannot bootstrap from 0%)
BASELINE_PERFECT = 0.95  # mean reward above this: little left to gain
HEADROOM_STOP = 0.01  # mean(best sample − item mean) below this: no sample beats its group
HEADROOM_WARN = 0.05
ZERO_SIGNAL_STOP = 0.9  # share of groups whose samples all score the same (they teach nothing)
ZERO_SIGNAL_WARN = 0.5
BINARY_SHARE_WARN = 0.9  # share of rewards that are exactly 0 or 1: a pass/fail grader in practice
IMBALANCE_WARN = 3.0  # most frequent / rarest label count in the epoch as the trainer samples it
ERROR_WARN = 0.05  # grader error share (excluding parse errors) with the response_format
ERROR_WITHOUT_FORMAT_WARN = 0.2  # ... and without it (a prompt at inference that lacks the format)
PARSE_STOP = 0.9  # share of answers that do not parse against the response_format
PARSE_WARN = 0.1
PARSE_WITHOUT_FORMAT_WARN = 0.5
BROKEN_REWARD_MARGIN = 0.02  # unparsed answers scoring more than parsed ones by this much: a hacking channel
ESTIMATE_WARN_HOURS = 24.0  # a job longer than this on this machine: consider max_steps or a GPU
BUSY_LOAD_PER_CORE = 1.5  # a load average above this per core makes the measured timings pessimistic


def result(check: str, verdict: str, reason: str, value=None) -> dict:
    return {"check": check, "verdict": verdict, "reason": reason, "value": value}


def baseline_reward(reward: dict) -> dict:
    """The base model's mean reward: near 0 there is nothing to reinforce; near 1 there is little to gain."""
    mean, ci = reward["mean"], reward.get("ci95") or [reward["mean"]] * 2
    value = {"mean": mean, "ci95": ci, "best_of_k_mean": reward.get("best_of_k_mean")}
    figure = f"mean reward {mean:.3f} [95% CI {ci[0]:.3f}, {ci[1]:.3f}] over {reward['n_samples']} samples"
    if mean < BASELINE_ZERO:
        return result("baseline_reward", "stop", f"{figure}: the base model almost never scores, so there is "
                      "nothing to reinforce (RFT cannot bootstrap from 0%). Make the task easier, the grader give "
                      "partial credit, or start from a stronger model.", value)
    if mean > BASELINE_PERFECT:
        return result("baseline_reward", "warn", f"{figure}: the base model is already near perfect; little to "
                      "gain. Use harder items or a stricter grader.", value)
    return result("baseline_reward", "ok", f"{figure}: between the extremes, as RFT needs.", value)


def headroom(reward: dict) -> dict:
    """Mean over items of (best sample − item mean): what the best of a group gains over its average."""
    value = reward["headroom"]
    figure = (f"headroom {value:.3f} (best of {reward['runs']} {reward['best_of_k_mean']:.3f} "
              f"vs mean {reward['mean']:.3f})")
    if value < HEADROOM_STOP:
        return result("headroom", "stop", f"{figure}: no sample beats its group's average, so the advantages are "
                      "zero and no gradient flows.", value)
    if value < HEADROOM_WARN:
        return result("headroom", "warn", f"{figure}: samples barely differ; the policy gradient will be weak. "
                      "A higher temperature or a finer-grained grader helps.", value)
    return result("headroom", "ok", f"{figure}: the best samples are clearly better than average.", value)


def zero_signal(reward: dict, group_size: int) -> dict:
    """The share of groups (at the job's samples per prompt) whose samples all score the same."""
    share = reward["zero_signal_share"]
    figure = f"{share:.0%} of {reward['n_items']} groups of {group_size} samples score all alike"
    if share >= ZERO_SIGNAL_STOP:
        return result("zero_signal", "stop", f"{figure}: those groups teach nothing and are skipped; almost every "
                      "step would be wasted.", share)
    if share >= ZERO_SIGNAL_WARN:
        return result("zero_signal", "warn", f"{figure}: half the compute is spent on groups without signal. "
                      "More samples per prompt (compute_multiplier) or a continuous grader helps.", share)
    return result("zero_signal", "ok", f"{figure}.", share)


def grader_continuity(rewards: list[float]) -> dict:
    """How many distinct reward values the grader gives, and how many rewards are exactly 0 or 1."""
    distinct = len({round(r, 6) for r in rewards})
    binary = sum(1 for r in rewards if r in (0.0, 1.0)) / max(1, len(rewards))
    value = {"distinct": distinct, "binary_share": binary, "n": len(rewards)}
    figure = f"{distinct} distinct reward value(s), {binary:.0%} of rewards exactly 0 or 1"
    if distinct <= 1:
        return result("grader_continuity", "stop", f"{figure}: the grader gave every sample the same reward.", value)
    if distinct <= 2 or binary >= BINARY_SHARE_WARN:
        return result("grader_continuity", "warn", f"{figure}: a pass/fail grader gives little signal. Give partial "
                      "credit (F1, fuzzy match, a weighted multi grader).", value)
    return result("grader_continuity", "ok", f"{figure}: a graded, continuous reward.", value)


def label_balance(before: dict | None, after: dict | None, *, balance: bool) -> dict:
    """Label imbalance (most frequent / rarest label count) of the training file and of one epoch as sampled.

    `before` / `after` are `openrft.data.dataset_stats` of the file's rows and of the trainer's epoch order
    (None when the rows carry no labels).
    """
    if not before or "imbalance_ratio" not in before:
        return result("label_balance", "ok", "the rows carry no label field: nothing to balance.", None)
    assert after is not None  # both are stats when the rows carry labels
    ratio_before, ratio_after = before["imbalance_ratio"], after["imbalance_ratio"]
    top = next(iter(before["labels"]))
    value = {"before": ratio_before, "after": ratio_after, "labels": len(before["labels"]),
             "most_frequent": top, "most_frequent_share": before["labels"][top] / max(1, before["rows"])}
    figure = (f"imbalance ratio {ratio_before:.1f} in the file, {ratio_after:.1f} as sampled "
              f"({'balanced' if balance else 'balancing off'}); {top!r} is in "
              f"{value['most_frequent_share']:.0%} of rows")
    if ratio_after > IMBALANCE_WARN:
        advice = ("balancing is limited by max_repeats and by labels that occur together: add rows of the rare "
                  "labels, or reward precision" if balance else "set openrft.balance: true")
        return result("label_balance", "warn", f"{figure}: the policy can earn reward by predicting the frequent "
                      f"labels ({advice}).", value)
    return result("label_balance", "ok", f"{figure}.", value)


def guessing_baseline(summary: dict) -> dict | None:
    """Does always predicting the most frequent training labels score as well as the base model?"""
    baselines = summary.get("baselines") or {}
    if "most_frequent" not in baselines:
        return None
    model = summary["reward"]["mean"]
    guess = baselines["most_frequent"]["reward"]["mean"]
    random = baselines.get("random", {}).get("reward", {}).get("mean")
    value = {"model": model, "most_frequent": guess, "random": random}
    figure = (f"predicting the {baselines['most_frequent'].get('k', '?')} most frequent labels scores {guess:.3f}"
              + (f", random labels {random:.3f}" if random is not None else "") + f"; the base model {model:.3f}")
    if guess >= model:
        return result("guessing_baseline", "warn", f"{figure}: a trivial guesser scores at least as well as the base "
                      "model, so the policy can climb by guessing. Judge a reward gain against this baseline, not "
                      f"against the base model (a trained reward below {guess:.3f} is no better than guessing); "
                      "balance the labels or reward precision.", value)
    return result("guessing_baseline", "ok", f"{figure}.", value)


def grader_errors(with_format: dict, without_format: dict | None, *, max_share: float) -> dict:
    """Grader error shares (parse errors apart) with the job's response_format, and without it.

    Each argument is `{"rate": share, "by_kind": {kind: count}, "example": message or None}`; `without_format`
    is None when the job has no response_format. The trainer fails a job whose step exceeds `max_share`.
    """
    rate = with_format["rate"]
    value = {"with_response_format": rate, "without_response_format": without_format and without_format["rate"],
             "by_kind": with_format["by_kind"]}
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(with_format["by_kind"].items(), key=lambda kv: -kv[1]))
    example = f" Example: {_short(with_format.get('example'))}" if with_format.get("example") else ""
    figure = f"grader errors in {rate:.0%} of samples" + (f" ({kinds})" if kinds else "")
    if without_format is not None:
        figure += f", {without_format['rate']:.0%} without the response_format"
    if rate > max_share:
        return result("grader_errors", "stop", f"{figure}: above max_grader_error_share={max_share:.0%}, the job "
                      f"would fail at its first step.{example}", value)
    if rate > ERROR_WARN:
        return result("grader_errors", "warn", f"{figure}: errors score 0 and drown the signal.{example}", value)
    if without_format is not None and without_format["rate"] > ERROR_WITHOUT_FORMAT_WARN:
        example = f" Example: {_short(without_format['example'])}" if without_format.get("example") else ""
        return result("grader_errors", "warn", f"{figure}: the grader relies on the response_format; serve the "
                      f"fine-tuned model with the same response_format.{example}", value)
    return result("grader_errors", "ok", f"{figure}.", value)


def parse_errors(with_format: dict | None, without_format: dict) -> dict:
    """Answers that do not parse against the response_format, with it enforced and without it.

    `with_format` is `{"rate", "truncated", "reward_parsed", "reward_unparsed"}` of the constrained run (None
    when the job has no response_format); `without_format` is `{"rate"}`: the share of free answers that are
    not valid JSON of the schema (`schema_parse_rate`), or None without a response_format. Unparsed answers
    still get graded (a grader may read the text), so their mean reward is shown beside the parsed ones'.
    """
    if with_format is None:
        return result("parse_errors", "ok", "no response_format: the grader reads the answer text.", None)
    rate, truncated = with_format["rate"], with_format["truncated"]
    free = without_format.get("rate")
    value = {"with_response_format": rate, "truncated": truncated, "without_response_format": free,
             "reward_parsed": with_format.get("reward_parsed"), "reward_unparsed": with_format.get("reward_unparsed")}
    figure = (f"{rate:.0%} of answers do not parse with the response_format ({truncated:.0%} cut at max_tokens)"
              + (f", {free:.0%} without it" if free is not None else ""))
    if rate > 0 and value["reward_unparsed"] is not None:
        figure += f"; unparsed answers score {value['reward_unparsed']:.3f}"
        if value["reward_parsed"] is not None:
            figure += f", parsed ones {value['reward_parsed']:.3f}"
    hint = " Raise openrft.max_tokens." if truncated > 0 else ""
    parsed, unparsed = value["reward_parsed"], value["reward_unparsed"]
    if parsed is not None and unparsed is not None and unparsed > parsed + BROKEN_REWARD_MARGIN:
        hint += (" The grader pays broken answers more than parsed ones, a channel for reward hacking (e.g. listing "
                 "labels until max_tokens): make it score answers without output_json 0.")
        if rate <= PARSE_WARN:
            return result("parse_errors", "warn", f"{figure}.{hint}", value)
    if rate > PARSE_STOP:
        return result("parse_errors", "stop", f"{figure}: almost no answer is graded on its content.{hint}", value)
    if rate > PARSE_WARN:
        return result("parse_errors", "warn", f"{figure}: the first steps will mostly teach the format, not the "
                      f"task.{hint}", value)
    if free is not None and free > PARSE_WITHOUT_FORMAT_WARN:
        return result("parse_errors", "warn", f"{figure}: without the format the model rarely writes valid JSON; "
                      "keep the response_format at inference.", value)
    return result("parse_errors", "ok", f"{figure}.", value)


def schema_parse_rate(texts: list[str], response_format: dict | None) -> float | None:
    """The share of answer texts that are not JSON valid under the response_format's schema."""
    if not response_format or response_format.get("type") != "json_schema" or not texts:
        return None
    import jsonschema

    schema = (response_format.get("json_schema") or {}).get("schema") or {}
    validator = jsonschema.Draft202012Validator(schema)
    failed = 0
    for text in texts:
        try:
            ok = validator.is_valid(json.loads(text))
        except (ValueError, TypeError):
            ok = False
        failed += not ok
    return failed / len(texts)


def missing_fields(files: list[tuple[str, list[tuple[int, dict]]]], fields: set[str],
                   grader_problems: Sequence[Any] = ()) -> dict:
    """Rows lacking an `item.<field>` that the grader reads (the trainer refuses such a file).

    `files` pairs each file name with its (line, row) pairs; `fields` are the grader's top-level item keys
    (`openrft.data.validate.grader_item_fields`); `grader_problems` are problems of the grader itself.
    """
    if grader_problems:
        return result("missing_fields", "stop", "the grader does not validate: "
                      + "; ".join(str(p) for p in grader_problems[:3]), None)
    counts: dict[str, int] = {}
    where: list[str] = []
    for name, rows in files:
        for line, row in rows:
            for field in sorted(fields):
                if field not in row:
                    counts[field] = counts.get(field, 0) + 1
                    if len(where) < 3:
                        where.append(f"{name}:{line} lacks {field!r}")
    shown = ", ".join(sorted(fields)) or "none"
    if counts:
        total = sum(counts.values())
        return result("missing_fields", "stop", f"{total} missing grader field(s) ({'; '.join(where)}"
                      f"{' …' if total > len(where) else ''}): such items grade as invalid_variable_error and the "
                      "trainer refuses the file.", counts)
    return result("missing_fields", "ok", f"every row has the fields the grader reads ({shown}).", {})


def data_problems(problems: list) -> dict:
    """Problems of the data files themselves (openrft.data.check_file): the trainer refuses such files."""
    if problems:
        shown = "; ".join(str(p) for p in problems[:3])
        shown += f"; … {len(problems) - 3} more" if len(problems) > 3 else ""
        return result("data", "stop", f"{len(problems)} problem(s) in the data: {shown}", len(problems))
    return result("data", "ok", "the training and validation files are valid RFT JSONL.", 0)


def estimate_check(estimate: dict) -> dict:
    """The job's time and tokens on this machine (see openrft.doctor.estimate)."""
    hours = estimate["total_s"] / 3600
    s = estimate["per_step_s"]
    tokens = estimate["tokens"]
    reason = (f"about {duration(estimate['total_s'])} on {estimate['device']}: {estimate['total_steps']} steps × "
              f"{duration(s['total'])} (sampling {duration(s['sampling'])}, grading {duration(s['grading'])}, "
              f"training {duration(s['training'])}) + {estimate['validations']} validations × "
              f"{duration(estimate['validation_s'])}; {_count(tokens['sampled'])} tokens sampled, "
              f"{_count(tokens['trained'])} trained")
    load, cores = estimate.get("load_average"), estimate.get("cpu_count") or 1
    if load is not None and load > BUSY_LOAD_PER_CORE * cores:
        reason += (f" (the machine was busy while measuring, load {load:.1f} on {cores} cores: "
                   "the times are pessimistic)")
    if hours > ESTIMATE_WARN_HOURS:
        return result("estimate", "warn", f"{reason}. Longer than {ESTIMATE_WARN_HOURS:.0f} h: cap it with "
                      "openrft.max_steps or run on a GPU.", estimate)
    return result("estimate", "ok", reason + ".", estimate)


def worst(checks: list[dict]) -> str:
    order = {"ok": 0, "warn": 1, "stop": 2}
    return max((c["verdict"] for c in checks), key=order.get, default="ok")  # type: ignore[arg-type]  # unknown: None


def duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


def _count(n: float) -> str:
    return f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.1f}k" if n >= 1e3 else f"{n:.0f}"


def _short(text: str | None, limit: int = 160) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= limit else text[:limit - 1] + "…"
