"""`job.json`: the one place it is read and written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from openrft.runs.files import RunFileError, problems, read_json, write_json
from openrft.runs.models import Job

JOB_FILE = "job.json"


def is_job_dir(path: Path) -> bool:
    return (Path(path) / JOB_FILE).is_file()


def load_job(run_dir: str | Path) -> Job:
    """The job of `run_dir`. FileNotFoundError when there is none; RunFileError naming the file and the field
    when it is not a job."""
    path = Path(run_dir) / JOB_FILE
    raw = read_json(path)
    if raw is None:
        raise FileNotFoundError(f"{run_dir}: not a job run directory (no {JOB_FILE})")
    return job_from_dict(raw, source=str(path))


def job_from_dict(raw: dict[str, Any], *, source: str = JOB_FILE) -> Job:
    try:
        return Job.model_validate(raw)
    except ValidationError as exc:
        raise RunFileError(f"{source}: not a fine-tuning job: {problems(exc)}") from None


def save_job(run_dir: str | Path, job: Job) -> None:
    """Write `job` to run_dir/job.json atomically."""
    write_json(Path(run_dir) / JOB_FILE, job.to_dict())
