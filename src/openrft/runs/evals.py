"""An eval run's `run.json` (`EvalRun`) and `output_items.jsonl` (`OutputItem`s): the one place they are read
typed. `openrft.evals.write_eval` writes them (with `summary.json`, which stays JSON)."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from openrft.runs.files import RunFileError, problems, read_json, read_jsonl
from openrft.runs.models import EvalRun, OutputItem

RUN_FILE = "run.json"
OUTPUT_ITEMS = "output_items.jsonl"


def read_eval_run(folder: str | Path) -> EvalRun:
    """The `eval.run` of an eval run folder. FileNotFoundError when it has no run.json; RunFileError naming the
    file and the field when it is not an eval run."""
    path = Path(folder) / RUN_FILE
    raw = read_json(path)
    if raw is None:
        raise FileNotFoundError(f"{folder}: not an eval run directory (no {RUN_FILE})")
    try:
        return EvalRun.model_validate(raw)
    except ValidationError as exc:
        raise RunFileError(f"{path}: not an eval run: {problems(exc)}") from None


def read_output_items(folder: str | Path, name: str = OUTPUT_ITEMS) -> list[OutputItem]:
    """The output items of an eval run folder in file order (none when it has no such file; a last line still
    being written is skipped). RunFileError naming the file, the line and the field of one that is not one."""
    path = Path(folder) / name
    items = []
    for line, raw in enumerate(read_jsonl(path), start=1):
        try:
            items.append(OutputItem.model_validate(raw))
        except ValidationError as exc:
            raise RunFileError(f"{path}: line {line}: not an output item: {problems(exc)}") from None
    return items
