"""Fine-tuned model names (`ft:<base>:openrft:<suffix>:<id>` and `…:ckpt-step-N`), and the base model a job's
checkpoints name; `openrft.runs.find_fine_tuned` finds where a name lives."""

from __future__ import annotations

from pathlib import Path

ORG = "openrft"


def model_name(base: str, suffix: str | None, job_id: str) -> str:
    """`ft:<base>:openrft:<suffix>:<id>`. A job that starts from a fine-tuned model names the base model of the
    chain (as OpenAI does: `ft:gpt-4o-mini:org:suffix:id` for a model tuned from a fine-tuned one)."""
    if base.startswith("ft:") and len(base.split(":")) > 2:
        base = base.split(":")[1]
    return f"ft:{base}:{ORG}:{suffix or ''}:{job_id.removeprefix('ftjob-')[:8]}"


def checkpoint_base(model: str) -> str:
    """What a job's adapter checkpoints name as their base model: the job's `model` as given, a local path made
    absolute (so that the checkpoint loads from any working directory)."""
    from openrft.models import DEFAULT_ALIASES

    if model.strip() in DEFAULT_ALIASES or model.startswith("ft:") or not Path(model).expanduser().exists():
        return model
    return str(Path(model).expanduser().resolve())


def checkpoint_name(fine_tuned_model: str, step: int) -> str:
    return f"{fine_tuned_model}:ckpt-step-{step}"
