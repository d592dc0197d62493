"""Where fine-tuned models and their checkpoints live (their `ft:…` names are made by `openrft.ids`)."""

from __future__ import annotations

import json
from pathlib import Path

from openrft import paths


def checkpoint_base(model: str) -> str:
    """What a job's adapter checkpoints name as their base model: the job's `model` as given, a local path made
    absolute (so that the checkpoint loads from any working directory)."""
    from openrft.models import DEFAULT_ALIASES

    if model.strip() in DEFAULT_ALIASES or model.startswith("ft:") or not Path(model).expanduser().exists():
        return model
    return str(Path(model).expanduser().resolve())


def find_fine_tuned(name: str, runs_root: Path | None = None) -> Path:
    """The checkpoint directory of a fine-tuned model or checkpoint name, searching the run directories."""
    from openrft.models import ModelError
    from openrft.training.checkpoints import list_checkpoints

    roots = [runs_root] if runs_root else [paths.runs_dir()]
    for root in roots:
        for job_file in sorted(Path(root).glob("*/job.json")):
            try:
                job = json.loads(job_file.read_text())
            except (OSError, json.JSONDecodeError):
                continue
            run_dir = job_file.parent
            if job.get("fine_tuned_model") == name:
                final = run_dir / "checkpoints" / "final"
                if final.is_dir():
                    return final
            for ckpt in list_checkpoints(run_dir):  # complete checkpoints only, never a .partial/.old leftover
                if ckpt.get("fine_tuned_model_checkpoint") == name:
                    return run_dir / "checkpoints" / f"step-{ckpt['step_number']}"
    raise ModelError(f"fine-tuned model {name!r} not found under {', '.join(str(r) for r in roots)}")
