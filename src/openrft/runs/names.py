"""The base model a job's checkpoints name (its `ft:…` names are made by `openrft.ids`);
`openrft.runs.find_fine_tuned` finds where a name lives."""

from __future__ import annotations

from pathlib import Path


def checkpoint_base(model: str) -> str:
    """What a job's adapter checkpoints name as their base model: the job's `model` as given, a local path made
    absolute (so that the checkpoint loads from any working directory)."""
    from openrft.models import DEFAULT_ALIASES

    if model.strip() in DEFAULT_ALIASES or model.startswith("ft:") or not Path(model).expanduser().exists():
        return model
    return str(Path(model).expanduser().resolve())
