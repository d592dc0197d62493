"""Checkpoint records (`checkpoints/step-N/checkpoint.json`) and the one rule for the best checkpoint.

The best checkpoint is the one with the highest validation score, the earliest on ties: for an RFT job its
full validation reward, for a supervised or dpo job minus its full validation loss. Retention
(`openrft.training.checkpoints.apply_retention`), the dashboard, the API and the demo all ask `best_checkpoint`.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import ValidationError

from openrft.runs.files import RunFileError, read_json, write_json
from openrft.runs.models import Checkpoint

CHECKPOINT_DIR = re.compile(r"step-(\d+)")  # checkpoints/step-N; step-N.partial / .old / .deleted are not ones
CHECKPOINT_FILE = "checkpoint.json"
FINAL = "final"


def checkpoint_dir(run_dir: str | Path, step: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"step-{step}"


def final_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "checkpoints" / FINAL


def has_model(folder: Path) -> bool:
    """Whether `folder` holds a loadable model (an adapter or full weights)."""
    return (folder / "adapter_config.json").is_file() or (folder / "config.json").is_file()


def list_checkpoints(run_dir: str | Path) -> list[Checkpoint]:
    """The complete checkpoints of a run, newest step first (as OpenAI lists them). A leftover of an
    interrupted write (`.partial`, `.old`, `.deleted`) or an unreadable record is not one."""
    records = []
    for path in Path(run_dir).glob(f"checkpoints/step-*/{CHECKPOINT_FILE}"):
        if not CHECKPOINT_DIR.fullmatch(path.parent.name):
            continue
        record = read_record(path.parent)
        if record is not None:
            records.append(record)
    return sorted(records, key=lambda r: -r.step_number)


def read_record(folder: Path) -> Checkpoint | None:
    """The checkpoint record in `folder`; None when it has none or an unreadable one."""
    try:
        raw = read_json(folder / CHECKPOINT_FILE)
        return Checkpoint.model_validate(raw) if raw is not None else None
    except (RunFileError, ValidationError):
        return None


def write_record(folder: Path, record: Checkpoint) -> None:
    write_json(folder / CHECKPOINT_FILE, record.to_dict())


def score(record: Checkpoint) -> float | None:
    """How good a checkpoint is (higher is better): its validation reward (RFT), else minus its validation
    loss (supervised, dpo); None when it was not validated."""
    reward = record.metrics.valid_reward
    if reward is not None:
        return reward
    loss = record.metrics.full_valid_loss
    return None if loss is None else -loss


def best_checkpoint(records: list[Checkpoint]) -> Checkpoint | None:
    """The checkpoint with the highest score, the earliest step on ties; None when none was validated."""
    scored = [(value, r) for r in records if (value := score(r)) is not None]
    if not scored:
        return None
    return max(scored, key=lambda pair: (pair[0], -pair[1].step_number))[1]
