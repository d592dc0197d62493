"""The trainer: OpenAI's job spec and hyperparameters; grader-driven policy optimization (RFT, loop.py), supervised
and DPO fine-tuning (offline.py, sft.py, dpo.py); checkpoints and resume."""

from openrft.training.checkpoints import list_checkpoints
from openrft.training.events import read_events
from openrft.training.job import create_job, load_job
from openrft.training.loop import run_job
from openrft.training.spec import JobSpec, JobSpecError, parse_job

__all__ = ["JobSpec", "JobSpecError", "create_job", "list_checkpoints", "load_job", "parse_job", "read_events",
           "run_job"]
