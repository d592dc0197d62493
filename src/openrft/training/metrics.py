"""The RFT step's metrics event: OpenAI's `scores / usage / errors / timing` (openai-rft-api.md §1.8) per grader,
plus `train` (the RL internals of `openrft.training.update`) and `valid` (the step's validation run in brief).
Its type is `openrft.runs.MetricsData`; the guards (`openrft.training.guards`), the dashboard and the API read it.
"""

from __future__ import annotations

from collections import Counter
from statistics import mean

from openrft.data.labels import labels_of
from openrft.evals import metrics
from openrft.graders.grade import METRIC_ERROR_FLAGS as ERROR_KINDS
from openrft.runs import MetricsData


def metrics_event(step, total_steps, rollouts, summary, stats, timing, grader_spec, *,
                  label_key: str = "labels") -> dict:
    """One step's metrics in OpenAI's shape (openai-rft-api.md §1.8), plus `train` (RL internals) and `valid`: the
    `data` of the step's metrics event, as JSON of `openrft.runs.MetricsData` (validated against it)."""
    name, gtype = grader_spec.get("name", "grader"), grader_spec.get("type")
    data: dict = {"step": step, "total_steps": total_steps, "scores": {}, "usage": {}, "errors": {}, "timing": {}}
    grader_scores = {"name": name, "type": gtype}
    grader_errors = {"name": name, "type": gtype}
    grader_timing = {"name": name, "type": gtype}
    usage = {}
    if rollouts:
        samples = [s for r in rollouts for s in r.samples]
        grades = [g for r in rollouts for g in r.grades[0]]
        train_mean = mean(g.reward for g in grades)
        data["scores"]["train_reward_mean"] = train_mean
        grader_scores["train_reward_mean"] = train_mean
        usage.update({"train_reasoning_tokens_mean": mean(s.reasoning_tokens for s in samples),
                      "train_reasoning_tokens_count": sum(s.reasoning_tokens for s in samples)})
        for kind in ERROR_KINDS:
            count = sum(1 for g, s in zip(grades, samples)
                        if g.error_kind == kind or (kind == "sample_parse_error" and s.parse_error))
            grader_errors[f"train_{kind}_count"] = count
            grader_errors[f"train_{kind}_mean"] = count / len(grades)
        grader_timing["train_execution_latency_mean"] = mean(g.execution_time for g in grades)
        data["train_mean_reward"] = train_mean
        data["completion_tokens_mean"] = mean(s.completion_tokens for s in samples)
        data["reasoning_tokens_mean"] = usage["train_reasoning_tokens_mean"]
        predicted = Counter(label for s in samples for label in (metrics.predicted_labels(s.output_json) or ()))
        if predicted or any(isinstance(r.row.get(label_key), list) for r in rollouts):
            data.setdefault("train", {})["predicted_label_counts"] = dict(predicted)
            data["train"]["reference_label_counts"] = dict(Counter(
                label for r in rollouts for label in labels_of(r.row, label_key) for _ in r.samples))
        subs = _sub_means(grades)
        data["scores"]["graders"] = [grader_scores] + [{"name": k, "type": "sub_grader", "train_reward_mean": v}
                                                       for k, v in subs.items()]
    else:
        data["scores"]["graders"] = [grader_scores]
    if summary:
        valid = summary["reward"]["mean"]
        data["scores"]["valid_reward_mean"] = valid
        grader_scores["valid_reward_mean"] = valid
        for entry in data["scores"]["graders"][1:]:
            entry["valid_reward_mean"] = summary.get("sub_rewards", {}).get(entry["name"])
        for key, value in summary.get("sub_rewards", {}).items():
            if key not in {e["name"] for e in data["scores"]["graders"]}:
                data["scores"]["graders"].append({"name": key, "type": "sub_grader", "valid_reward_mean": value})
        n_valid = summary["reward"]["n_samples"]
        usage.update({"valid_reasoning_tokens_mean": summary["tokens"]["reasoning_mean"],
                      "valid_reasoning_tokens_count": summary["tokens"]["reasoning_mean"] * n_valid})
        for kind in ERROR_KINDS:
            count = summary["errors"]["by_kind"].get(kind, 0)
            if kind == "sample_parse_error":  # flagged by the grader or by the engine: the larger count
                count = max(count, round(summary["errors"]["sample_parse_error_rate"] * n_valid))
            grader_errors[f"valid_{kind}_count"] = count
            grader_errors[f"valid_{kind}_mean"] = count / max(1, n_valid)
        grader_timing["valid_execution_latency_mean"] = summary["latency"]["grader_mean_s"]
        data["full_valid_mean_reward"] = valid
        data["full_valid_mean_parse_error"] = summary["errors"]["sample_parse_error_rate"]
        data["valid_reasoning_tokens_mean"] = summary["tokens"]["reasoning_mean"]
        data["valid"] = {"reward_mean": valid, "ci95": summary["reward"]["ci95"],
                         "run_to_run_std": summary["reward"]["run_to_run_std"],
                         "headroom": summary["reward"]["headroom"],
                         "completion_tokens_mean": summary["tokens"]["completion_mean"]}
        if "classification" in summary:
            data["valid"].update({k: summary["classification"]["micro"][k] for k in ("precision", "recall", "f1")})
            data["valid"]["macro_f1"] = summary["classification"]["macro"]["f1"]
            data["valid"]["predicted_label_counts"] = {label: v["predicted"] for label, v in
                                                       summary["classification"]["per_label"].items()}
            data["valid"]["baselines"] = {name: {"reward": b["reward"]["mean"], **b["classification"]["micro"]}
                                          for name, b in summary.get("baselines", {}).items()}
    graders_usage = []
    if rollouts:  # the training batch's judge-model tokens per grader (the service adds the validation's)
        from openrft.graders.usage import grader_usage_entries, model_usage

        grades = [g for r in rollouts for g in r.grades[0]]
        graders_usage = [{k: v for k, v in entry.items() if k.startswith("train_")} for entry in
                         grader_usage_entries(grader_spec, {"train": {"samples": len(grades),
                                                                      "models": model_usage(grades)}})]
    data["usage"] = {"samples": usage, "graders": graders_usage}
    data["errors"] = {"graders": [grader_errors]}
    data["timing"] = {"step": {k: timing.get(k, 0.0) for k in ("sampling", "training", "eval", "full_iteration")},
                      "graders": [grader_timing]}
    if stats:
        data.setdefault("train", {}).update(stats)
    return MetricsData.model_validate(data).to_dict()


def _sub_means(grades) -> dict:
    keys = {k for g in grades for k in (g.sub_rewards or {})}
    return {k: mean(float(g.sub_rewards.get(k, 0.0)) for g in grades) for k in sorted(keys)}


def step_message(step, total, rollouts, summary) -> str:
    parts = [f"Step {step}/{total}"]
    if rollouts:
        parts.append(f"train mean reward={mean(g.reward for r in rollouts for g in r.grades[0]):.2f}")
    if summary:
        parts.append(f"full validation mean reward={summary['reward']['mean']:.2f}")
        parts.append(f"full validation mean parse error={summary['errors']['sample_parse_error_rate']:.2f}")
    return " , ".join(parts)
