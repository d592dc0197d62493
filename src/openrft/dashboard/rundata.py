"""Read run directories into the series the dashboard and the static reports draw.

One reader for both outputs: the web page gets these dicts as JSON, `report.py` draws the same dicts
with matplotlib, so a chart on the page and its PNG always show the same numbers.

The input is the run directory format of `docs/architecture.md`, read through `openrft.runs`:

- a job: `job.json` (`runs.Job`), `events.jsonl` (metrics events whose `data` is `runs.MetricsData`: OpenAI's
  `scores`, `usage`, `errors`, `timing` and our `train`), `checkpoints/step-N/checkpoint.json`
  (`runs.Checkpoint`; the best one is `runs.best_checkpoint`'s), `evals/step-N/` (the validation eval run of
  step N);
- an eval run: `run.json` (`eval.run`), `summary.json`, `output_items.jsonl` (the eval summary is read as the
  dict `openrft.evals` writes).

A job is read while it runs, so a last JSONL line that is still being written is skipped; a broken line
anywhere else is an error naming the file, the line and the reason (`RunDirError`).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from openrft import runs
from openrft.runs import RunFileError, RunRef, discover, step_dirs
from openrft.runs.discover import is_eval_dir
from openrft.runs.jobs import is_job_dir
from openrft.runs.models import GraderFigures, Job, MetricsData, OutputItem

# Statuses in which a run may still change: the page keeps polling these.
ACTIVE_STATUSES = {"validating_files", "queued", "running", "in_progress"}

# RL internals drawn first, in this order (other numeric keys of `data.train` follow).
TRAIN_KEYS = ("loss", "kl", "clip_fraction", "entropy", "grad_norm", "zero_signal_groups", "zero_signal_share",
              "response_length_mean", "truncated_share", "ratio_mean", "sampler_logprob_gap", "learning_rate")

_FLAT_METRIC = re.compile(r"^(train|valid|full_valid)_(?!mean_reward$|mean_parse_error$|reasoning_tokens_mean$)\w+$")

# The eval module's reward histogram uses 20 bins; the page uses the same.
HISTOGRAM_BINS = 20

_ERROR_KEY = re.compile(r"^(train|valid)_(.+)_count$")

__all__ = ["RunDirError", "RunRef", "discover", "is_eval_dir", "is_job_dir", "step_dirs"]


RunDirError = RunFileError  # the dashboard's name for the one run-directory error (`openrft.runs.files`)


# --- reading files (openrft.runs.files) ------------------------------------------------------------------------

def read_json(path: Path) -> dict:
    """A JSON object file; `{}` when it is absent."""
    return runs.read_json(path) or {}


read_jsonl = runs.read_jsonl  # the objects of a JSONL file, tolerating a last line that is still being written


def read_job(ref: RunRef) -> Job:
    """The job of a job run directory, typed."""
    try:
        return runs.load_job(ref.path)
    except FileNotFoundError as exc:
        raise RunDirError(str(exc)) from None


def read_steps(ref: RunRef) -> list[MetricsData]:
    """The job's metrics, one per step (a step written twice, e.g. after a resume, keeps the last)."""
    return runs.metrics_steps(read_jsonl(ref.path / "events.jsonl"), source=str(ref.path / "events.jsonl"))


def signature(path: Path) -> str:
    """Changes whenever a file of the run changes: lets the page skip redrawing an unchanged run."""
    parts = []
    for name in ("job.json", "events.jsonl", "run.json", "summary.json", "output_items.jsonl"):
        file = path / name
        if file.is_file():
            stat = file.stat()
            parts.append(f"{stat.st_mtime_ns}:{stat.st_size}")
    parts.append(str(len(step_dirs(path / "checkpoints"))))
    parts.append(str(len(step_dirs(path / "evals"))))
    return "-".join(parts)


# --- jobs ------------------------------------------------------------------------------------------------

def job_summary(ref: RunRef) -> dict:
    """One row of the run list: status, model, task, progress and best validation reward."""
    job = read_job(ref)
    steps = read_steps(ref)
    best_step, best_reward = best_valid(ref)
    last = steps[-1] if steps else None
    return {
        "key": ref.key,
        "kind": "job",
        "id": job.id,
        "status": job.status,
        "model": job.model,
        "fine_tuned_model": job.fine_tuned_model,
        "task": job.task,
        "created_at": job.created_at,
        "finished_at": job.finished_at,
        "step": last.step if last else None,
        "total_steps": last.total_steps if last else None,
        "best_valid_reward": best_reward,
        "best_step": best_step,
        "path": str(ref.path),
    }


def job_view(ref: RunRef) -> dict:
    """Everything the job page draws: its summary, per-step series, checkpoints and validation runs."""
    job = read_job(ref)
    events = read_jsonl(ref.path / "events.jsonl")
    steps = read_steps(ref)
    series = job_series(steps)
    step_evals = job_step_evals(ref)
    series["precision_recall"] = {
        "step": [e["step"] for e in step_evals],
        "precision": [e["precision"] for e in step_evals],
        "recall": [e["recall"] for e in step_evals],
        "f1": [e["f1"] for e in step_evals],
        "macro_f1": [e["macro_f1"] for e in step_evals],
        "valid_reward": [e["reward_mean"] for e in step_evals],
    }
    grader = job.method.reinforcement.grader if job.method.reinforcement else {}
    hyperparameters = job.method.hyperparameters
    return _finite({
        **job_summary(ref),
        "signature": signature(ref.path),
        "active": job.status in ACTIVE_STATUSES,
        "error": job.error.model_dump() if job.error else None,
        "method": job.kind,
        "hyperparameters": (hyperparameters.to_dict() if hyperparameters else None) or job.hyperparameters or {},
        "grader": {"type": grader.get("type"), "name": grader.get("name")},
        "series": series,
        "checkpoints": job_checkpoints(ref, steps),
        "step_evals": step_evals,
        "guards": guard_warnings(events),
        "baselines": step_evals[-1]["baselines"] if step_evals else {},
        "messages": [
            {"created_at": e.get("created_at"), "level": e.get("level"), "message": e.get("message")}
            for e in events if e.get("type") != "metrics"
        ][-50:],
    })


def guard_warnings(events: list[dict]) -> list[dict]:
    """The reward-hacking guards that fired (`openrft.training.guards`: warn events with `data.guard`), in order."""
    found = []
    for event in events:
        guard = (event.get("data") or {}).get("guard") if isinstance(event.get("data"), dict) else None
        if isinstance(guard, dict):
            found.append({"step": guard.get("step"), "check": guard.get("check"), "verdict": guard.get("verdict"),
                          "message": guard.get("message") or event.get("message"),
                          "value": guard.get("value")})  # job_view's _finite turns NaN and inf into None
    return found


def best_valid(ref: RunRef) -> tuple[int | None, float | None]:
    """(step, validation reward) of the job's best checkpoint (`openrft.runs.best_checkpoint`: the highest
    validation reward, the first on ties); (None, None) before one is validated or for a job ranked by loss.

    Step 0 is the base model's validation before any update: a reference, not a checkpoint of the job.
    """
    best = runs.best_checkpoint(runs.list_checkpoints(ref.path))
    if best is None or _num(best.metrics.valid_reward) is None:
        return None, None
    return best.step_number, _num(best.metrics.valid_reward)


def job_series(steps: list[MetricsData]) -> dict:
    """Per-step series; every list is aligned with `step`, None where a step did not report the value."""
    graders = _names(d.scores.graders if d.scores else [] for d in steps)
    latency_graders = _names(d.timing.graders if d.timing else [] for d in steps)
    usage_graders = _names(d.usage.graders if d.usage else [] for d in steps)
    error_kinds: list[str] = []
    for data in steps:
        for entry in data.errors.graders if data.errors else []:
            for key in entry.model_extra or {}:
                match = _ERROR_KEY.match(key)
                if match and match.group(2) not in error_kinds:
                    error_kinds.append(match.group(2))
    train_keys = [k for k in TRAIN_KEYS if any(_num((d.train or {}).get(k)) is not None for d in steps)]
    # supervised and dpo jobs report flat metrics (train_loss, valid_loss, full_valid_loss, accuracies…): charted
    # with the training internals, first
    flat = [k for d in steps for k, v in d.to_dict().items() if _FLAT_METRIC.match(k) and _num(v) is not None]
    flat = list(dict.fromkeys(flat))
    for data in steps:
        for key, value in (data.train or {}).items():
            if key not in train_keys and _num(value) is not None:
                train_keys.append(key)

    def grader_entry(entries: list[GraderFigures], name: str) -> GraderFigures | None:
        return next((entry for entry in entries if entry.name == name), None)

    def figure(entries: list[GraderFigures], name: str, key: str) -> float | None:
        entry = grader_entry(entries, name)
        return _num(entry.figure(key)) if entry else None

    def scores(data: MetricsData) -> list[GraderFigures]:
        return data.scores.graders if data.scores else []

    def latency(data: MetricsData) -> list[GraderFigures]:
        return data.timing.graders if data.timing else []

    def usage(data: MetricsData) -> list[GraderFigures]:
        return data.usage.graders if data.usage else []

    def timing(data: MetricsData, key: str) -> float | None:
        return _num(getattr(data.timing.step, key)) if data.timing else None

    def other_time(data: MetricsData) -> float | None:
        full = timing(data, "full_iteration")
        if full is None:
            return None
        return max(0.0, full - sum(timing(data, k) or 0.0 for k in ("sampling", "training", "eval")))

    def errors_of(data: MetricsData, kind: str) -> float | None:
        total, seen = 0.0, False
        for entry in data.errors.graders if data.errors else []:
            for prefix in ("train", "valid"):
                value = _num(entry.figure(f"{prefix}_{kind}_count"))
                if value is not None:
                    total, seen = total + value, True
        return total if seen else None

    def usage_sum(data: MetricsData, name: str, kind: str) -> float | None:
        entry = grader_entry(usage(data), name)
        return _sum_num(entry, f"train_{kind}_tokens_count", f"valid_{kind}_tokens_count") if entry else None

    return {
        "step": [d.step for d in steps],
        "total_steps": steps[-1].total_steps if steps else None,
        "reward": {"train": [_num(d.train_reward) for d in steps], "valid": [_num(d.valid_reward) for d in steps]},
        "graders": [
            {"name": name,
             "type": next((found.type for d in steps if (found := grader_entry(scores(d), name))), None),
             "train": [figure(scores(d), name, "train_reward_mean") for d in steps],
             "valid": [figure(scores(d), name, "valid_reward_mean") for d in steps]}
            for name in graders
        ],
        "tokens": {
            "train_reasoning": [_sample_tokens(d, "train", "reasoning") for d in steps],
            "valid_reasoning": [_sample_tokens(d, "valid", "reasoning") for d in steps],
            "train_answer": [_answer_tokens(d, "train") for d in steps],
            "valid_answer": [_answer_tokens(d, "valid") for d in steps],
        },
        "timing": {key: [timing(d, key) for d in steps] for key in ("sampling", "training", "eval")}
        | {"other": [other_time(d) for d in steps]},
        "grader_latency": [
            {"name": name,
             "train": [figure(latency(d), name, "train_execution_latency_mean") for d in steps],
             "valid": [figure(latency(d), name, "valid_execution_latency_mean") for d in steps]}
            for name in latency_graders
        ],
        "errors": {kind: [errors_of(d, kind) for d in steps] for kind in error_kinds},
        "grader_tokens": [
            {"name": name,
             "model": next((found.figure("model") for d in steps if (found := grader_entry(usage(d), name))), None),
             "prompt": [usage_sum(d, name, "prompt") for d in steps],
             "completion": [usage_sum(d, name, "completion") for d in steps]}
            for name in usage_graders
        ],
        "train": {key: [_num(d.flat(key)) for d in steps] for key in flat}
        | {key: [_num((d.train or {}).get(key)) for d in steps] for key in train_keys},
    }


def _sample_tokens(data: MetricsData, split: str, kind: str) -> float | None:
    samples = data.usage.samples if data.usage else {}
    value = _num(samples.get(f"{split}_{kind}_tokens_mean"))
    if value is None and split == "train" and kind == "reasoning":
        value = _num(data.reasoning_tokens_mean)
    if value is None and split == "valid" and kind == "reasoning":
        value = _num(data.valid_reasoning_tokens_mean)
    return value


def _answer_tokens(data: MetricsData, split: str) -> float | None:
    """Answer tokens per sample: reported directly, else completion tokens minus reasoning tokens."""
    direct = _sample_tokens(data, split, "answer")
    if direct is not None:
        return direct
    samples = data.usage.samples if data.usage else {}
    completion = _num(samples.get(f"{split}_completion_tokens_mean"))
    if completion is None and split == "train":
        completion = _num(data.completion_tokens_mean)  # OpenAI's older flat key
    if completion is None and split == "valid" and data.valid:
        completion = _num(data.valid.completion_tokens_mean)  # the trainer's `valid` block
    reasoning = _sample_tokens(data, split, "reasoning")
    if completion is None:
        return None
    return max(0.0, completion - (reasoning or 0.0))


def job_checkpoints(ref: RunRef, steps: list[MetricsData]) -> list[dict]:
    """The job's checkpoints with their metrics; `best` marks `openrft.runs.best_checkpoint`'s."""
    valid_by_step = {d.step: _num(d.valid_reward) for d in steps}
    records = sorted(runs.list_checkpoints(ref.path), key=lambda r: r.step_number)
    best = runs.best_checkpoint(records)
    rows = []
    for record in records:
        reward = _num(record.metrics.valid_reward)
        rows.append({
            "id": record.id,
            "step": record.step_number,
            "model": record.fine_tuned_model_checkpoint,
            "created_at": record.created_at,
            "metrics": record.metrics.to_dict(),
            "valid_reward": reward if reward is not None else valid_by_step.get(record.step_number),
            "path": str(runs.checkpoint_dir(ref.path, record.step_number)),
            "best": record is best,
        })
    return rows


def job_step_evals(ref: RunRef) -> list[dict]:
    """The validation eval runs of a job (`evals/step-N`): reward, micro precision/recall/F1 (`precision`,
    `recall`, `f1`) and macro (`macro_precision`, …), baselines."""
    rows = []
    for step_dir in step_dirs(ref.path / "evals"):
        summary = read_json(step_dir / "summary.json")
        micro = classification(summary)["micro"] or {}
        macro = classification(summary)["macro"] or {}
        rows.append({
            "step": int(step_dir.name.split("-")[1]),
            "key": f"{ref.key}/evals/{step_dir.name}",
            "reward_mean": reward_stats(summary).get("mean"),
            "ci95": reward_stats(summary).get("ci95"),
            "precision": micro.get("precision"),
            "recall": micro.get("recall"),
            "f1": micro.get("f1"),
            **{f"macro_{k}": macro.get(k) for k in ("precision", "recall", "f1")},
            "baselines": baselines(summary),
        })
    return rows


# --- eval runs (summary.json as written by openrft.evals) --------------------------------------------------

def eval_summary(ref: RunRef) -> dict:
    """One row of the run list for an eval run (a folder without its run.json: what its summary tells)."""
    summary = read_json(ref.path / "summary.json")
    try:
        run = runs.read_eval_run(ref.path)
    except FileNotFoundError:
        run = None
    return {
        "key": ref.key,
        "kind": "eval",
        "id": run.id if run else ref.path.name,
        "name": run.name if run else summary.get("name"),
        "status": run.status if run else ("completed" if summary else None),
        "model": run.model if run else summary.get("model"),
        "task": (run.metadata or {}).get("task") if run else None,
        "created_at": run.created_at if run else None,
        "reward_mean": reward_stats(summary).get("mean"),
        "runs": summary.get("runs"),
        "result_counts": run.result_counts.to_dict() if run else None,
        "parent": ref.parent,
        "path": str(ref.path),
    }


def eval_view(ref: RunRef) -> dict:
    """Everything the eval page draws: variance study, reward histogram, precision/recall, headline figures."""
    summary = read_json(ref.path / "summary.json")
    items = runs.read_output_items(ref.path)
    head = eval_summary(ref)
    return _finite({
        **head,
        "signature": signature(ref.path),
        "active": head["status"] in ACTIVE_STATUSES,
        "reward": reward_stats(summary),
        "figures": headline_figures(summary),
        "n_output_items": len(items),
        "variance": variance_study(summary),
        "histogram": histogram([r for r in (item_reward(item) for item in items) if r is not None]),
        "classification": classification(summary),
        "baselines": baselines(summary),
    })


def reward_stats(summary: dict) -> dict:
    """`summary.reward` (mean, ci95, run_to_run_std, headroom, …), `{}` for a run without a summary yet."""
    reward = summary.get("reward")
    return reward if isinstance(reward, dict) else {}


def item_reward(item: OutputItem) -> float | None:
    """The reward of one output item (its first criterion's score), None when it is not a finite number."""
    return _num(item.reward)


def variance_study(summary: dict) -> dict:
    """The per-item statistics of `summary.items` (mean, min, max, std over the k runs), sorted by mean.

    Sorted this way the plot shows at a glance which items are always solved, never solved, or solved
    by chance (a wide min–max bar): the headroom that training can take.
    """
    items = sorted((it for it in summary.get("items") or [] if _num(it.get("mean")) is not None),
                   key=lambda it: it["mean"])
    return {
        "items": [{"item": it.get("id", it.get("index")), "mean": it["mean"], "min": it.get("min"),
                   "max": it.get("max"), "std": it.get("std"), "k": it.get("k")} for it in items],
        "runs": summary.get("runs"),
        "headroom": reward_stats(summary).get("headroom"),
    }


def histogram(values: list[float], bins: int = HISTOGRAM_BINS, span: tuple[float, float] | None = None) -> dict:
    """Counts of `values` in equal bins over `span`, by default [min(0, lowest), max(1, highest)]: the same
    bins as the eval module's reward histogram PNG."""
    if not values:
        return {"edges": [], "counts": []}
    span = span or (min(0.0, min(values)), max(1.0, max(values)))
    counts, edges = np.histogram(values, bins=bins, range=span)
    return {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}


def classification(summary: dict) -> dict:
    """`summary.classification`: micro and macro precision/recall/F1 and per label.

    None when the task has no labels."""
    block = summary.get("classification") or {}
    per_label = {label: {k: _num(v.get(k)) for k in ("precision", "recall", "f1", "support")}
                 for label, v in (block.get("per_label") or {}).items() if isinstance(v, dict)}
    return {"micro": _prf(block.get("micro")), "macro": _prf(block.get("macro")), "per_label": per_label}


def baselines(summary: dict) -> dict:
    """The model-free baselines graded by the same grader: name → {reward, precision, recall, f1} (micro) and
    macro_precision, macro_recall, macro_f1."""
    out = {}
    for name, block in (summary.get("baselines") or {}).items():
        if isinstance(block, dict):
            micro = _prf(((block.get("classification") or {}).get("micro"))) or {}
            macro = _prf(((block.get("classification") or {}).get("macro"))) or {}
            out[name] = {"reward": _num(reward_stats(block).get("mean")), **micro,
                         **{f"macro_{k}": v for k, v in macro.items()}}
    return out


def headline_figures(summary: dict) -> list[tuple[str, Any]]:
    """The figures a reader looks at first, as (name, value) rows for a plain table."""
    reward = reward_stats(summary)
    errors = summary.get("errors") or {}
    tokens = summary.get("tokens") or {}
    latency = summary.get("latency") or {}
    rows = [
        ("mean reward", reward.get("mean")),
        ("95% CI", reward.get("ci95")),
        ("run-to-run std", reward.get("run_to_run_std")),
        ("best-of-k mean", reward.get("best_of_k_mean")),
        ("headroom (best − mean)", reward.get("headroom")),
        ("zero-signal items", reward.get("zero_signal_share")),
        ("items × runs", f"{reward.get('n_items')} × {summary.get('runs')}" if reward else None),
        ("pass rate", summary.get("pass_rate")),
        *((f"{avg} precision / recall / F1", _prf_text(classification(summary)[avg])) for avg in ("micro", "macro")),
        *((f"baseline {name}: reward / micro F1 / macro F1", _baseline_text(b))
          for name, b in baselines(summary).items()),
        ("grader errors", errors.get("rate")),
        ("parse errors", errors.get("sample_parse_error_rate")),
        ("answer tokens (mean)", tokens.get("answer_mean")),
        ("reasoning tokens (mean)", tokens.get("reasoning_mean")),
        ("truncated answers", tokens.get("truncated_share")),
        ("sampling time (s)", latency.get("sampling_s")),
        ("grader latency (s, mean)", latency.get("grader_mean_s")),
    ]
    for kind, count in (errors.get("by_kind") or {}).items():
        rows.append((f"errors: {kind}", count))
    for criterion in summary.get("criteria") or []:
        rows.append((f"criterion {criterion.get('name')} ({criterion.get('type')})", criterion.get("mean")))
    for name, value in (summary.get("sub_rewards") or {}).items():
        rows.append((f"sub-reward {name}", value))
    return [(name, value) for name, value in rows if value is not None]


def output_items(ref: RunRef, *, offset: int = 0, limit: int = 20, status: str | None = None,
                 order: str = "item", query: str | None = None) -> dict:
    """A page of output items, slimmed for display; filter by status or text, order by item or reward."""
    items = runs.read_output_items(ref.path)
    if status:
        items = [item for item in items if item.status == status]
    if query:
        needle = query.lower()
        items = [item for item in items if needle in json.dumps(item.to_dict(), ensure_ascii=False).lower()]
    if order in ("reward_asc", "reward_desc"):
        items.sort(key=lambda item: _or(item_reward(item), -math.inf), reverse=order == "reward_desc")
    page = items[offset:offset + limit]
    return _finite({"total": len(items), "offset": offset, "limit": limit, "items": [slim_item(item) for item in page]})


def slim_item(item: OutputItem) -> dict:
    """An output item as the page shows it: prompt, answer, reasoning, reference fields and each grade."""
    sample = item.sample
    return {
        "id": item.id,
        "datasource_item_id": item.datasource_item_id,
        "status": item.status,
        "reward": item_reward(item),
        "run": sample.run,
        "input": [_message(m) for m in sample.input],
        "output": "\n".join(m.content or "" for m in sample.output),
        "reasoning": sample.reasoning or "",
        "error": sample.error,
        "finish_reason": sample.finish_reason,
        "usage": sample.usage.to_dict(),
        "reference": item.datasource_item,
        "results": [r.to_dict() for r in item.results],
    }


def _message(message: Any) -> dict:
    if not isinstance(message, dict):
        return {"role": "", "content": str(message)}
    content = message.get("content")
    if isinstance(content, dict):
        content = content.get("text", json.dumps(content))
    elif isinstance(content, list):
        content = "".join(part.get("text", "") if isinstance(part, dict) else str(part) for part in content)
    return {"role": message.get("role", ""), "content": "" if content is None else str(content)}


# --- listing and comparing -------------------------------------------------------------------------------

def list_runs(refs: dict[str, RunRef]) -> dict:
    """The run list: jobs and top-level eval runs, newest first (an unreadable run shows its error), plus the
    keys of every eval run, a job's validation runs included, for the comparison picker."""
    jobs: list[dict] = []
    evals: list[dict] = []
    for ref in refs.values():
        if ref.parent:
            continue
        try:
            row = job_summary(ref) if ref.kind == "job" else eval_summary(ref)
        except RunDirError as exc:
            row = {"key": ref.key, "kind": ref.kind, "id": ref.path.name, "status": "unreadable",
                   "error": str(exc), "path": str(ref.path)}
        (jobs if ref.kind == "job" else evals).append(row)
    newest = lambda row: -(row.get("created_at") or 0)  # noqa: E731
    return _finite({"jobs": sorted(jobs, key=newest), "evals": sorted(evals, key=newest),
                    "eval_keys": [ref.key for ref in refs.values() if ref.kind == "eval"]})


def compare(refs: list[RunRef]) -> dict:
    """Eval runs side by side (models, checkpoints): `openrft.evals.compare`'s rows (reward, noise, P/R/F1,
    difference to the first run and whether it exceeds the noise, baselines) plus histograms on shared bins."""
    from openrft.evals import compare as compare_results
    from openrft.evals import load_eval

    results = []
    for ref in refs:
        try:
            results.append(load_eval(ref.path))
        except (FileNotFoundError, RunFileError) as exc:
            raise RunDirError(f"{ref.path}: cannot compare: {exc}") from None
    rows = compare_results(results) if results else []
    rewards = {ref.key: [r for r in (item_reward(i) for i in result.output_items) if r is not None]
               for ref, result in zip(refs, results)}
    every = [r for values in rewards.values() for r in values]
    span = (min(0.0, *every), max(1.0, *every)) if every else None
    for row, ref in zip(rows, refs):  # the first len(refs) rows are the runs, in order; baselines follow
        row["key"] = ref.key
        row["histogram"] = histogram(rewards[ref.key], span=span)
    return {"runs": _finite(rows)}


# --- helpers ---------------------------------------------------------------------------------------------

def _num(value: Any) -> float | None:
    """A finite number, or None (JSON has no NaN, and the page must never receive one)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


def _prf_text(block: dict | None) -> str | None:
    """"0.500 / 0.400 / 0.444" (precision / recall / F1), None without figures."""
    if not block or all(v is None for v in block.values()):
        return None
    return " / ".join("—" if block[k] is None else f"{block[k]:.3f}" for k in ("precision", "recall", "f1"))


def _baseline_text(b: dict) -> str:
    return " / ".join("—" if b.get(k) is None else f"{b[k]:.3f}" for k in ("reward", "f1", "macro_f1"))


def _prf(block: Any) -> dict | None:
    if not isinstance(block, dict):
        return None
    return {k: _num(block.get(k)) for k in ("precision", "recall", "f1")}


def _finite(value: Any) -> Any:
    """`value` with every NaN or infinity replaced by None, for JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _sum_num(entry: GraderFigures, *keys: str) -> float | None:
    values = [_num(entry.figure(key)) for key in keys]
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def _names(grader_lists: Iterable[list[GraderFigures]]) -> list[str]:
    names: list[str] = []
    for entries in grader_lists:
        for entry in entries:
            if entry.name is not None and entry.name not in names:
                names.append(entry.name)
    return names
