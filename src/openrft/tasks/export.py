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
from openrft.tasks.base import Task


def export_task(task: Task | str, out_dir: str | Path, *, balance: bool = True, seed: int = 0,
                max_repeats: float = 4.0, **options) -> dict:
    """Write the task's files into `out_dir` and return what `task.json` says about them."""
    if isinstance(task, str):
        from openrft.tasks import get_task

        task = get_task(task)
    out = Path(out_dir)
    train = task.rows("train", **options)
    validation = task.rows("validation", **options)
    leaks = check_overlap(list(enumerate(train, 1)), list(enumerate(validation, 1)), file="train.jsonl",
                          other_file="validation.jsonl", group_key=task.group_key)
    if leaks:
        raise DatasetError(leaks)
    summary: dict = {"task": task.name, "source": task.source, "options": options, "seed": seed,
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
