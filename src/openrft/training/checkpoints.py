"""Checkpoints and resume state, written atomically.

Every directory is written under a `.partial` name, fsynced, and renamed into place: a crash or a full disk
leaves the previous checkpoint intact and never a half-written one. Replacing an existing directory moves it
to `.old` first, so at every instant either the directory or its `.old` copy is complete; deleting one renames
it to `.deleted` first. `recover_interrupted_writes` (run by `load_state`, i.e. on every start or resume) puts
a lone `.old` copy back and removes the other leftovers. Retention keeps the `keep` best checkpoints by
validation score (OpenAI keeps three; the rule of `openrft.runs.best_checkpoint`) plus the last one.
tests/reliability/test_kill_resume.py kills the trainer inside each of these writes (openrft.faults).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from openrft import faults, ids
from openrft.models import ADAPTER_BASE_FILE
from openrft.runs import Checkpoint, checkpoint_dir, list_checkpoints, score, write_json
from openrft.runs.checkpoints import write_record

LEFTOVERS = (".partial", ".old", ".deleted")


@contextmanager
def _atomic_dir(target: Path):
    """Yields a temp dir next to `target`; on success it replaces `target`, files and renames made durable."""
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for path in tmp.rglob("*"):
        if path.is_file():
            with path.open("rb") as f:
                os.fsync(f.fileno())
    _fsync_dir(tmp)
    old = target.with_name(target.name + ".old")
    if target.exists():  # else a lone `.old` may be the only complete copy: it goes once the new one is in
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
        faults.maybe_fail("rename")
    tmp.rename(target)
    _fsync_dir(target.parent)  # the rename itself survives a power loss only once its directory is synced
    shutil.rmtree(old, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_model(model, tokenizer, target: Path, base_model: str, *, merged: bool = False) -> Path:
    """Save a loadable model: the peft adapter (+ the base model's name), or a merged full model."""
    with _atomic_dir(target) as tmp:
        _save_model_files(model, tokenizer, tmp, base_model, merged=merged)
    return target


def _save_model_files(model, tokenizer, folder: Path, base_model: str, *, merged: bool = False) -> None:
    if hasattr(model, "peft_config") and not merged:
        model.save_pretrained(folder)
        (folder / ADAPTER_BASE_FILE).write_text(base_model)
    else:
        to_save = model.merge_and_unload() if merged and hasattr(model, "peft_config") else model
        to_save.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def write_checkpoint(run_dir: Path, model, tokenizer, *, step: int, base_model: str, job_id: str,
                     checkpoint_model: str, metrics: dict) -> Checkpoint:
    """checkpoints/step-N: the loadable model and its checkpoint.json record, renamed into place together."""
    record = Checkpoint.model_validate({
        "object": "fine_tuning.job.checkpoint", "id": ids.checkpoint_id(),
        "created_at": int(time.time()), "fine_tuned_model_checkpoint": checkpoint_model,
        "fine_tuning_job_id": job_id, "step_number": step, "metrics": metrics})
    with _atomic_dir(checkpoint_dir(run_dir, step)) as tmp:
        _save_model_files(model, tokenizer, tmp, base_model)
        faults.maybe_fail("checkpoint")
        write_record(tmp, record)
    return record


def apply_retention(run_dir: Path, keep: int, last_step: int) -> list[int]:
    """Delete checkpoints outside the best `keep` (by `openrft.runs.score`: validation reward, or minus validation
    loss) and the last; returns the steps kept. Ties keep the earlier step, as `best_checkpoint` does."""
    records = list_checkpoints(run_dir)
    ranked = sorted(records, key=lambda r: (-_or_lowest(score(r)), r.step_number))
    kept = {r.step_number for r in ranked[:keep]} | {last_step}
    for record in records:
        if record.step_number not in kept:
            _remove_dir(checkpoint_dir(run_dir, record.step_number))
    return sorted(kept)


def _or_lowest(value: float | None) -> float:
    return float("-inf") if value is None else value


def _remove_dir(path: Path) -> None:
    """Delete a directory without ever leaving it half-deleted under its own name: rename, then delete."""
    doomed = path.with_name(path.name + ".deleted")
    shutil.rmtree(doomed, ignore_errors=True)
    try:
        path.rename(doomed)
    except FileNotFoundError:  # already gone
        return
    shutil.rmtree(doomed, ignore_errors=True)


def recover_interrupted_writes(run_dir: Path) -> list[str]:
    """Finish what a killed process left in `run_dir` and `run_dir/checkpoints`; returns what was done.

    A `.old` copy whose directory is missing (killed between the two renames of a replacement) is renamed
    back: it is the last complete version. Other `.old`, `.partial` (never renamed into place) and `.deleted`
    directories are removed. Several processes may call this at once (distributed resume): a rename that
    another one already did is skipped.
    """
    done = []
    for folder in (run_dir, run_dir / "checkpoints"):
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            suffix = next((s for s in LEFTOVERS if path.name.endswith(s)), None)
            if suffix is None or not path.is_dir():
                continue
            target = path.with_name(path.name[:-len(suffix)])
            if suffix == ".old" and not target.exists():
                try:
                    path.rename(target)
                    done.append(f"restored {target.name} from {path.name}")
                except OSError:  # another process restored it first
                    pass
                continue
            shutil.rmtree(path, ignore_errors=True)
            done.append(f"removed {path.name}")
    return done


def save_state(run_dir: Path, model, optimizer, state: dict) -> None:
    """Everything needed to resume at a step boundary: trainable weights, optimizer, RNGs, data order, step."""
    with _atomic_dir(run_dir / "state") as tmp:
        trainable = {name: p.detach().cpu() for name, p in model.named_parameters() if p.requires_grad}
        torch.save(trainable, tmp / "trainable.pt")
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        torch.save({"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()},
                   tmp / "rng.pt")
        write_json(tmp / "trainer_state.json", state)


def load_state(run_dir: Path, model, optimizer) -> dict | None:
    """Restore what save_state wrote (after recovering from an interrupted write); None when nothing was saved."""
    recover_interrupted_writes(run_dir)
    path = run_dir / "state"
    if not (path / "trainer_state.json").is_file():
        return None
    trainable = torch.load(path / "trainable.pt", weights_only=True)
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in trainable.items():
            params[name].copy_(value)
    optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=True))
    rng = torch.load(path / "rng.pt", weights_only=False)
    torch.set_rng_state(rng["torch"])
    np.random.set_state(rng["numpy"])
    random.setstate(rng["python"])
    return json.loads((path / "trainer_state.json").read_text())
