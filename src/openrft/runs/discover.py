"""Finding runs on disk: every job and eval run under some folders (`discover`), and the checkpoint folder of a
fine-tuned model's name (`find_fine_tuned`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from openrft import paths
from openrft.runs.checkpoints import checkpoint_dir, final_dir, list_checkpoints
from openrft.runs.evals import OUTPUT_ITEMS, RUN_FILE
from openrft.runs.files import RunFileError
from openrft.runs.jobs import JOB_FILE, is_job_dir, load_job

EVAL_FILES = (RUN_FILE, "summary.json", OUTPUT_ITEMS)


@dataclass(frozen=True)
class RunRef:
    """A run found on disk: `key` is its id in URLs, `kind` is "job" or "eval"; `parent` is the job of a step eval."""

    key: str
    kind: str
    path: Path
    parent: str | None = None


def is_eval_dir(path: Path) -> bool:
    return any((path / name).is_file() for name in EVAL_FILES)


def step_dirs(folder: Path) -> list[Path]:
    """The `step-N` subfolders of `folder`, by step number."""
    if not folder.is_dir():
        return []
    dirs = [p for p in folder.iterdir() if p.is_dir() and re.fullmatch(r"step-\d+", p.name)]
    return sorted(dirs, key=lambda p: int(p.name.split("-")[1]))


def discover(roots: Iterable[Path]) -> dict[str, RunRef]:
    """Every job and eval run in `roots`: a root is a run directory itself or a folder of them, or a folder of
    folders of them (`openrft eval -m A -m B` writes `evals/<time>/<model>/`, keyed `<time>/<model>`).

    A job's validation runs are included under the key `<job key>/evals/step-N`.
    """
    found: dict[str, RunRef] = {}

    def add(path: Path, kind: str, key: str, parent: str | None = None) -> str:
        base, n = key, 2
        while key in found:
            if found[key].path == path:
                return key
            key, n = f"{base}-{n}", n + 1
        found[key] = RunRef(key, kind, path, parent)
        return key

    def add_run(path: Path, key: str) -> bool:
        if is_job_dir(path):
            key = add(path, "job", key)
            for step_dir in step_dirs(path / "evals"):
                add(step_dir, "eval", f"{key}/evals/{step_dir.name}", parent=key)
        elif is_eval_dir(path):
            add(path, "eval", key)
        else:
            return False
        return True

    def subdirs(path: Path) -> list[Path]:
        return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))

    for root in roots:
        root = Path(root).expanduser().resolve()
        if add_run(root, root.name) or not root.is_dir():
            continue
        for child in subdirs(root):
            if not add_run(child, child.name):
                for grandchild in subdirs(child):
                    add_run(grandchild, f"{child.name}/{grandchild.name}")
    return found


def job_dirs(root: Path | None = None) -> list[Path]:
    """The job run directories directly under `root` (default `$OPENRFT_HOME/runs`), by name."""
    return [job_file.parent for job_file in sorted(Path(root or paths.runs_dir()).glob(f"*/{JOB_FILE}"))]


def find_fine_tuned(name: str, runs_root: Path | None = None) -> Path:
    """The checkpoint directory of a fine-tuned model or checkpoint name (`ft:…`, `ft:…:ckpt-step-N`), searching
    the run directories. ModelError when no run has it."""
    from openrft.models import ModelError

    root = runs_root or paths.runs_dir()
    for run_dir in job_dirs(root):
        try:
            job = load_job(run_dir)
        except (OSError, RunFileError):
            continue
        if job.fine_tuned_model == name and final_dir(run_dir).is_dir():
            return final_dir(run_dir)
        for ckpt in list_checkpoints(run_dir):  # complete checkpoints only, never a .partial/.old leftover
            if ckpt.fine_tuned_model_checkpoint == name:
                return checkpoint_dir(run_dir, ckpt.step_number)
    raise ModelError(f"fine-tuned model {name!r} not found under {root}")
