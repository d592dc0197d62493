"""Export a task as the files any RFT service takes: `train.jsonl`, `validation.jsonl`, `grader.json`,
`response_format.json` (null for free-text tasks), and `task.json` describing what was written.

The training file is balanced by default (`openrft.data.balance_rows`), so it repeats some rows and
leaves out some copies of the dominant labels on purpose; `data check` accepts it with
`--allow-duplicates`. openrft's own trainer balances every epoch itself, so give it the unbalanced file
(`balance=False`) or the task directly.
"""

from __future__ import annotations

import json
from pathlib import Path

from openrft.data.balance import balance_rows
from openrft.data.labels import imbalance_ratio, label_counts
from openrft.data.validate import DatasetError, check_overlap, write_rows
from openrft.tasks.base import Task, TaskError


def export_task(task: Task | str, out_dir: str | Path, *, balance: bool = True, seed: int = 0,
                max_repeats: float = 4.0, method: str = "reinforcement", **options) -> dict:
    """Write the task's files into `out_dir` and return what `task.json` says about them.

    `method="supervised"` writes SFT rows instead: each prompt with its reference answer as the assistant
    message (`reference_answer`); the reference fields stay beside the messages (labels for balancing, the
    group key for splits)."""
    if isinstance(task, str):
        from openrft.tasks import get_task

        task = get_task(task)
    if method not in ("reinforcement", "supervised"):
        raise TaskError(f"--method {method!r}: a task exports reinforcement or supervised rows (DPO pairs come "
                        "from an eval run: openrft data preferences)")
    out = Path(out_dir)
    train = task.rows("train", **options)
    validation = task.rows("validation", **options)
    if method == "supervised":
        train, validation = supervised_rows(task, train), supervised_rows(task, validation)
    leaks = check_overlap(list(enumerate(train, 1)), list(enumerate(validation, 1)), file="train.jsonl",
                          other_file="validation.jsonl", group_key=task.group_key)
    if leaks:
        raise DatasetError(leaks)
    summary: dict = {"task": task.name, "method": method, "source": task.source, "options": options, "seed": seed,
                     "rows": {"train": len(train), "validation": len(validation)}}
    if task.label_key:
        summary["imbalance_ratio"] = {"train": imbalance_ratio(label_counts(train, task.label_key)),
                                      "validation": imbalance_ratio(label_counts(validation, task.label_key))}
    written = train
    if balance and task.label_key:
        written = balance_rows(train, label_key=task.label_key, seed=seed, max_repeats=max_repeats)
        summary["balanced"] = {"method": "fitted repeat weights (openrft.data.balance)", "max_repeats": max_repeats,
                               "rows": len(written),
                               "imbalance_ratio": imbalance_ratio(label_counts(written, task.label_key))}
    out.mkdir(parents=True, exist_ok=True)
    write_rows(written, out / "train.jsonl")
    write_rows(validation, out / "validation.jsonl")
    (out / "grader.json").write_text(json.dumps(task.grader, indent=2, ensure_ascii=False) + "\n")
    (out / "response_format.json").write_text(json.dumps(task.response_format, indent=2, ensure_ascii=False) + "\n")
    summary["files"] = ["train.jsonl", "validation.jsonl", "grader.json", "response_format.json", "task.json"]
    (out / "task.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    return summary


def reference_answer(task: Task, row: dict) -> str:
    """The answer a row's references call for, as the model should write it: for a label task with a json_schema
    response_format, the canonical JSON `{"labels": [...]}` (labels in the task's order, at most the schema's
    `maxItems`: the first ones in that order); otherwise the row's `answer` text (GSM8K's worked solution)."""
    schema = ((task.response_format or {}).get("json_schema") or {}).get("schema") or {}
    labels_schema = (schema.get("properties") or {}).get(task.label_key or "")
    if task.label_key and labels_schema is not None and isinstance(row.get(task.label_key), list):
        order = {label: i for i, label in enumerate(task.labels or [])}
        labels = sorted(dict.fromkeys(row[task.label_key]), key=lambda label: order.get(label, len(order)))
        if labels_schema.get("maxItems") is not None:
            labels = labels[:labels_schema["maxItems"]]
        return json.dumps({task.label_key: labels}, ensure_ascii=False)
    if isinstance(row.get("answer"), str):
        return row["answer"]
    raise TaskError(f"task {task.name}: its rows have no reference answer to write as the assistant message")


def supervised_rows(task: Task, rows: list[dict]) -> list[dict]:
    """SFT rows: each row's messages followed by the assistant's reference answer, its reference fields kept."""
    from openrft.data.validate import validate_rows

    out = [{**row, "messages": row["messages"] + [{"role": "assistant", "content": reference_answer(task, row)}]}
           for row in rows]
    return validate_rows(out, source=f"task {task.name} (supervised)", method="supervised", allow_duplicates=True)
