"""A job's status changes as the loops make them: resume, stop (pause, interrupt, cancel) at a step boundary,
finish (succeeded, failed, cancelled), each written to job.json with its event."""

from __future__ import annotations

import time
from pathlib import Path

from openai.types.fine_tuning.fine_tuning_job import Error as JobError

from openrft.runs import EventLog, Job, save_job
from openrft.runs.models import JobStatus
from openrft.training.checkpoints import load_state, save_state, write_checkpoint
from openrft.training.distributed import Distributed, unwrap


def resume(run_dir: Path, model, optimizer, log: EventLog) -> dict | None:
    """The run's saved state (model and optimizer restored in place), or None for a fresh start. The events of
    steps after the saved state (lost when the process died) are dropped from the log, and so are all metrics
    events of a run that died before its first saved state."""
    state = load_state(run_dir, model, optimizer)
    if state:
        step = state["step"]
        dropped = log.truncate_after_step(step)
        log.emit(f"Resumed from step {step}" + (f" ({dropped} events of lost steps dropped)" if dropped else ""))
    elif any(e.get("type") == "metrics" for e in log.read()):  # died before its first saved state: start over
        dropped = log.truncate_after_step(-1)
        log.emit(f"Restarted from the beginning ({dropped} events of lost steps dropped)")
    return state


def stop(run_dir: Path, job, log: EventLog, action: str, model, tokenizer, optimizer, step: int, state: dict,
         dist: Distributed, trackers) -> Job:
    """Stop `job` (a ResolvedJob) after `step`: its state saved; "pause" also writes a checkpoint, "interrupt"
    leaves it queued (resumable), anything else cancels it."""
    if dist.main:
        save_state(run_dir, model, optimizer, {"step": step, **state})
        if trackers:
            trackers.close()
    record = job.job
    if action == "pause":
        if dist.main and step > 0:
            write_checkpoint(run_dir, unwrap(model), tokenizer, step=step, base_model=job.base_model, job_id=job.id,
                             checkpoint_model=job.checkpoint_model(step), metrics={"step": step})
        record.status = "paused"
        if dist.main:
            save_job(run_dir, record)
            log.emit(f"Fine-tuning job paused at step {step}")
        return record
    if action == "interrupt":
        record.status = "queued"  # resumable: `openrft train --resume RUN_DIR` continues from the state
        if dist.main:
            save_job(run_dir, record)
            log.emit(f"Fine-tuning job interrupted at step {step}; resume with `openrft train --resume {run_dir}`",
                     level="warn")
        return record
    return finish(run_dir, record, log, "cancelled")


__all__ = ["JobError", "finish", "resume", "stop"]


def finish(run_dir: Path, job: Job, log: EventLog, status: JobStatus, error: JobError | None = None) -> Job:
    job.status = status
    job.finished_at = int(time.time())
    if error:
        job.error = error
        log.emit(f"Fine-tuning job failed: {error.message}", level="error")
    elif status == "succeeded":
        log.emit("The job has successfully completed")
    elif status == "cancelled":
        log.emit("Fine-tuning job cancelled")
    save_job(run_dir, job)
    return job

