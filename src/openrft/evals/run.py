"""An eval run: rollouts over a dataset with no update, stored as OpenAI eval-run objects.

`run_eval` samples every row `runs` times with the same prompts, response_format and grader as training,
grades each sample, and aggregates: reward mean with a 95% interval and the run-to-run noise, per-item
mean/max/min/std, pass rate, errors by kind, tokens and latency, and for label tasks micro/macro
precision/recall/F1 with the model-free baselines (`metrics.baseline_predictions`) graded by the same grader.
The trainer's validation step calls this function; so does `openrft eval`, and the API's eval runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean
from typing import Any

from openai.types.evals.run_retrieve_response import PerModelUsage, PerTestingCriteriaResult, ResultCounts
from openai.types.evals.runs.output_item_retrieve_response import SampleOutput, SampleUsage
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from openrft import ids
from openrft.data.labels import labels_of
from openrft.data.splits import group_of
from openrft.engines.base import Engine, SamplingParams
from openrft.evals import metrics
from openrft.evals.rollout import Rollout, generate_and_grade, grader_item
from openrft.runs.evals import OUTPUT_ITEMS, RUN_FILE, read_eval_run, read_output_items
from openrft.runs.models import EvalRun, OutputItem, Result, Sample

DEFAULT_PASS_THRESHOLD = 0.5


@dataclass
class EvalResult:
    run: EvalRun
    summary: dict
    output_items: list[OutputItem] = field(default_factory=list)
    rollouts: list[Rollout] = field(default_factory=list)  # in memory only (not reloaded)
    out_dir: Path | None = None


def pass_threshold(criterion: dict) -> float:
    """OpenAI: pass_threshold where given; string_check and label_model pass at 1 (§4.4); else 0.5 (ours)."""
    if criterion.get("pass_threshold") is not None:
        return float(criterion["pass_threshold"])
    if criterion.get("type") in ("string_check", "label_model"):
        return 1.0
    return DEFAULT_PASS_THRESHOLD


def run_eval(rows: list[dict], *, engine: Engine, grader, params: SamplingParams, runs: int = 1,
             out_dir: str | Path | None = None, name: str | None = None, train_rows: list[dict] | None = None,
             labels: list[str] | None = None, label_key: str = "labels", eval_id: str | None = None,
             progress: bool = True, graders: list | None = None, seed: int = 0, plots: bool = True,
             group_key: str | None = None, text_baseline: bool = False) -> EvalResult:
    """Evaluate `engine` on `rows`: `runs` samples per row, every sample graded by every criterion.

    `grader` is one grader dict (RFT) or a list of testing criteria (evals). `graders` may pass already-built
    grader objects (the trainer reuses its own) in the same order. `labels` turns on classification metrics
    and baselines (label sets read from `row[label_key]` and `output_json.labels`). `group_key` names the row
    field whose rows belong together (EuroVoc: `celex_id`): each summary item records its `group`, which a
    comparison's clustered bootstrap resamples (without it every row is its own group). `text_baseline` adds the
    text classifier fitted on `train_rows` to the baselines (`evals.text_classifier`; a fit per eval, so off
    unless asked for: the trainer's validations leave it out).
    """
    from openrft.graders import build_grader

    criteria = grader if isinstance(grader, list) else [grader]
    built = graders or [build_grader(criterion) for criterion in criteria]
    params = SamplingParams(**{**params.__dict__, "n": runs})
    run_id = ids.eval_run_id()
    eval_id = eval_id or ids.eval_id()
    created = int(time.time())
    began = time.perf_counter()
    with Progress(TextColumn("[bold]eval[/] {task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), disable=not progress, transient=False) as bar:
        task = bar.add_task(f"{engine.model_name} × {runs} runs", total=len(rows))
        rollouts, timing = generate_and_grade(rows, engine=engine, graders=built, criteria=criteria, params=params,
                                              on_batch=lambda n: bar.advance(task, n))
    timing["total"] = time.perf_counter() - began

    output_items = [_output_item(rollout, s, criteria, run_id, eval_id, created, params)
                    for rollout in rollouts for s in range(len(rollout.samples))]
    summary = summarize(rollouts, criteria, built, timing=timing, train_rows=train_rows, labels=labels,
                        label_key=label_key, seed=seed, group_key=group_key, text_baseline=text_baseline)
    summary.update({"model": engine.model_name, "runs": runs, "name": name or engine.model_name,
                    "sampling": {k: v for k, v in params.__dict__.items() if k != "n"}})
    run = eval_run(rollouts, output_items, criteria, summary, run_id=run_id, eval_id=eval_id,
                   name=name or engine.model_name, model=engine.model_name, created=created)
    result = EvalResult(run, summary, output_items, rollouts)
    if out_dir is not None:
        write_eval(result, Path(out_dir), plots=plots)
    return result


def eval_run(rollouts: list[Rollout], output_items: list[OutputItem], criteria: list[dict], summary: dict, *,
             run_id: str, eval_id: str, name: str, model: str, created: int) -> EvalRun:
    """The completed `eval.run` of graded rollouts and their output items: counts, usage (the model's, then the
    judges' of model graders) and each criterion's passes."""
    samples = [s for r in rollouts for s in r.samples]
    passed = sum(1 for item in output_items if item.status == "pass")
    errored = sum(1 for item in output_items if item.status == "error")
    usage = PerModelUsage(model_name=model, invocation_count=len(output_items),
                          prompt_tokens=sum(s.prompt_tokens for s in samples),
                          completion_tokens=sum(s.completion_tokens for s in samples),
                          total_tokens=sum(s.prompt_tokens + s.completion_tokens for s in samples), cached_tokens=0)
    return EvalRun(
        object="eval.run", id=run_id, eval_id=eval_id, status="completed", model=model, name=name,
        created_at=created, report_url=None,
        result_counts=ResultCounts(total=len(output_items), errored=errored,
                                   failed=len(output_items) - passed - errored, passed=passed),
        per_model_usage=[usage, *judge_usage(summary["grader_usage"])],
        per_testing_criteria_results=[
            PerTestingCriteriaResult(
                testing_criteria=criterion.get("name", f"criterion-{c}"),
                passed=sum(1 for r in rollouts for g in r.grades[c] if g.reward >= pass_threshold(criterion)),
                failed=sum(1 for r in rollouts for g in r.grades[c] if g.reward < pass_threshold(criterion)))
            for c, criterion in enumerate(criteria)],
        data_source={"type": "jsonl", "source": {"type": "file_content", "count": len(rollouts)}},
        metadata={}, error=None)


def summarize(rollouts: list[Rollout], criteria: list[dict], built: list, *, timing: dict,
              train_rows: list[dict] | None, labels: list[str] | None, label_key: str, seed: int,
              group_key: str | None = None, text_baseline: bool = False) -> dict:
    rewards = [r.rewards for r in rollouts]
    samples = [s for r in rollouts for s in r.samples]
    grades = [g for r in rollouts for g in r.grades[0]]
    errors: dict[str, int] = {}
    for grade in grades:
        if grade.error_kind:
            errors[grade.error_kind] = errors.get(grade.error_kind, 0) + 1
    n = max(1, len(samples))
    from openrft.graders.usage import model_usage

    summary = {
        # per criterion: the graded samples and each judge model's tokens and calls (model graders)
        "grader_usage": [{"name": c.get("name", f"criterion-{i}"), "samples": sum(len(r.grades[i]) for r in rollouts),
                          "models": model_usage(g for r in rollouts for g in r.grades[i])}
                         for i, c in enumerate(criteria)],
        "reward": metrics.reward_stats(rewards),
        "items": [{"index": r.index, "id": r.row.get("id"), "group": group_of(r.row, group_key),
                   **metrics.per_item_stats(r.rewards)} for r in rollouts],
        "pass_rate": mean(1.0 if g.reward >= pass_threshold(criteria[0]) else 0.0 for g in grades) if grades else None,
        "pass_threshold": pass_threshold(criteria[0]),
        "criteria": [{"name": c.get("name", f"criterion-{i}"), "type": c.get("type"),
                      "mean": mean(g.reward for r in rollouts for g in r.grades[i]) if rollouts else None}
                     for i, c in enumerate(criteria)],
        "sub_rewards": _sub_reward_means(grades),
        "errors": {"by_kind": errors, "rate": sum(errors.values()) / n,
                   "sample_parse_error_rate": sum(1 for s in samples if s.parse_error) / n,
                   "engine_error_rate": sum(1 for s in samples if s.error) / n},
        "tokens": {"completion_mean": mean(s.completion_tokens for s in samples) if samples else 0,
                   "reasoning_mean": mean(s.reasoning_tokens for s in samples) if samples else 0,
                   "answer_mean": mean(s.completion_tokens - s.reasoning_tokens for s in samples) if samples else 0,
                   "prompt_mean": mean(s.prompt_tokens for s in samples) if samples else 0,
                   "truncated_share": sum(1 for s in samples if s.finish_reason == "length") / n},
        "latency": {"sampling_s": timing["sampling"], "grading_s": timing["grading"], "total_s": timing["total"],
                    "per_sample_s": timing["sampling"] / n,
                    "grader_mean_s": mean(g.execution_time for g in grades) if grades else 0.0},
    }
    if labels:
        pairs = [(metrics.predicted_labels(s.output_json), set(labels_of(r.row, label_key)))
                 for r in rollouts for s in r.samples]
        classification = metrics.classification_metrics(pairs, labels)
        groups = [group_of(r.row, group_key) for r in rollouts for _ in r.samples]
        if len(set(groups)) > 1:
            classification["other_items"] = metrics.own_vs_other_items(
                pairs, [r.index for r in rollouts for _ in r.samples], groups, labels, seed=seed)
        summary["classification"] = classification
        summary["baselines"] = _baselines(rollouts, built[0], train_rows, labels, label_key, seed,
                                          text_baseline=text_baseline)
    return summary


def judge_usage(grader_usage: list[dict]) -> list[PerModelUsage]:
    """The judge models of the run's model graders as `per_model_usage` entries (their calls and tokens)."""
    totals: dict[str, dict[str, int]] = {}
    for criterion in grader_usage:
        for model, usage in criterion["models"].items():
            entry = totals.setdefault(model, {"invocation_count": 0, "prompt_tokens": 0, "completion_tokens": 0,
                                              "total_tokens": 0, "cached_tokens": 0})
            entry["invocation_count"] += usage["calls"]
            for key in ("prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens"):
                entry[key] += usage[key]
    return [PerModelUsage(model_name=model, **usage) for model, usage in totals.items()]


def _sub_reward_means(grades) -> dict[str, float]:
    keys = {k for g in grades for k in (g.sub_rewards or {})}
    return {k: mean(float(g.sub_rewards.get(k, 0.0)) for g in grades) for k in sorted(keys)}


def _baselines(rollouts: list[Rollout], grader, train_rows: list[dict] | None, labels: list[str], label_key: str,
               seed: int, *, text_baseline: bool = False) -> dict:
    """The model-free baselines (label statistics of `train_rows`, else of the eval's own rows) and, with
    `text_baseline` and training rows, the text classifier fitted on them, graded like the model. Each keeps its
    per-item mean rewards (`item_means`, in the rows' order) for paired comparisons."""
    runs = max(1, min(len(r.samples) for r in rollouts))
    predictions = metrics.baseline_predictions(train_rows or [r.row for r in rollouts], len(rollouts), runs,
                                               labels=labels, label_key=label_key, seed=seed)
    if text_baseline and train_rows:
        from openrft.evals.text_classifier import text_classifier_predictions

        fitted = text_classifier_predictions(train_rows, [r.row for r in rollouts], labels, label_key)
        predictions["text_classifier"] = [[answer] * runs for answer in fitted]
    out = {}
    for name in ("most_frequent", "random", "every_label", "text_classifier"):
        if name not in predictions:
            continue
        preds = predictions[name]
        pairs = [(metrics.baseline_sample(preds[i][k]), grader_item(r.row))
                 for i, r in enumerate(rollouts) for k in range(runs)]
        grades = grader.grade_many(pairs)
        rewards = [[grades[i * runs + k].reward for k in range(runs)] for i in range(len(rollouts))]
        cls = metrics.classification_metrics(
            [(set(preds[i][k]), set(labels_of(r.row, label_key))) for i, r in enumerate(rollouts) for k in range(runs)],
            labels)
        out[name] = {"reward": metrics.reward_stats(rewards), "item_means": [mean(r) for r in rewards],
                     "classification": {k: cls[k] for k in ("micro", "macro", "samples_f1")},
                     "example": preds[0][0] if preds else []}
    out["most_frequent"]["k"] = predictions["_k"]
    return out


def _output_item(rollout: Rollout, s: int, criteria: list[dict], run_id: str, eval_id: str, created: int,
                 params: SamplingParams) -> OutputItem:
    sample = rollout.samples[s]
    results = []
    for c, criterion in enumerate(criteria):
        grade = rollout.grades[c][s]
        results.append(Result(name=criterion.get("name", f"criterion-{c}"), type=criterion.get("type"),
                              score=grade.reward, passed=grade.reward >= pass_threshold(criterion),
                              sub_rewards=grade.sub_rewards or {}, error_kind=grade.error_kind,
                              errors={k: v for k, v in (grade.errors or {}).items() if v}))
    if sample.error:
        status = "error"
    else:
        status = "pass" if all(r.passed for r in results) else "fail"
    answer: dict[str, Any] = {"role": "assistant", "content": sample.output_text}
    if sample.output_tools:
        answer["tool_calls"] = sample.output_tools
    return OutputItem(
        object="eval.run.output_item", id=ids.output_item_id(), run_id=run_id, eval_id=eval_id, created_at=created,
        status=status, datasource_item_id=rollout.index, datasource_item=grader_item(rollout.row), results=results,
        sample=Sample(input=rollout.row["messages"], output=[SampleOutput.model_validate(answer)],
                      output_json=sample.output_json, reasoning=sample.reasoning_text,
                      finish_reason=sample.finish_reason, model=sample.model,
                      usage=SampleUsage.model_validate({
                          "prompt_tokens": sample.prompt_tokens, "completion_tokens": sample.completion_tokens,
                          "total_tokens": sample.prompt_tokens + sample.completion_tokens, "cached_tokens": 0,
                          "reasoning_tokens": sample.reasoning_tokens}),
                      error=sample.error or sample.parse_error, temperature=params.temperature,
                      max_completion_tokens=params.max_tokens, top_p=params.top_p, seed=params.seed,
                      latency_s=sample.latency_s, run=s))


def write_eval(result: EvalResult, out_dir: Path, *, plots: bool = True) -> Path:
    from openrft.runs.files import write_json, write_jsonl

    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / RUN_FILE, result.run.to_dict())
    write_json(out_dir / "summary.json", result.summary)
    write_jsonl(out_dir / OUTPUT_ITEMS, [item.to_dict() for item in result.output_items])
    if plots:
        from openrft.evals.plots import write_eval_plots

        write_eval_plots(result, out_dir)
    result.out_dir = out_dir
    return out_dir


def load_eval(path: str | Path) -> EvalResult:
    """The eval run written in `path`. FileNotFoundError without its summary.json or run.json; RunFileError
    naming the file when one is not what openrft writes."""
    from openrft.runs.files import read_json

    path = Path(path)
    summary = read_json(path / "summary.json")
    if summary is None:
        raise FileNotFoundError(f"{path}: not an eval run directory (no summary.json)")
    return EvalResult(read_eval_run(path), summary, read_output_items(path), [], path)
