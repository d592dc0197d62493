"""`openrft train`: run an RFT job file (OpenAI's create-job body + the `openrft` block) with progress."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from openrft.errors import EXIT_BAD_INPUT, EXIT_FAILED

console = Console()


def train_command(
    job_file: Optional[Path] = typer.Argument(None, help="job file (YAML or JSON)"),
    resume: Optional[Path] = typer.Option(None, help="resume the run in this directory from its last state"),
    output_dir: Optional[Path] = typer.Option(None, help="run directory (default $OPENRFT_HOME/runs/<job id>)"),
    processes: int = typer.Option(1, help="data-parallel processes on this machine (gloo on CPU, NCCL on GPU)"),
    max_steps: Optional[int] = typer.Option(None, help="stop after this many steps"),
    create_only: bool = typer.Option(False, help="validate and create the run directory, print it, train nothing "
                                     "(then launch `torchrun … -m openrft.training.worker RUN_DIR` on each node)"),
):
    """Train: sample, grade, update; validate every eval_interval steps; checkpoint the best."""
    from openrft.dashboard import report_finished_job
    from openrft.runs import load_job, save_job
    from openrft.training import run_job

    if resume is None and job_file is None:
        raise typer.BadParameter("give a job file, or --resume RUN_DIR")
    if resume is not None:
        if not (resume / "job.json").is_file():
            raise typer.BadParameter(f"{resume}: not a job run directory (no job.json)", param_hint="--resume")
        run_dir = resume
    else:
        from openrft.spec import load_job_body

        assert job_file is not None  # checked above
        body = load_job_body(job_file)
        if output_dir:
            body.setdefault("openrft", {})["output_dir"] = str(output_dir)
        if max_steps:
            body.setdefault("openrft", {})["max_steps"] = max_steps
        job = _create(body, job_file)
        run_dir = Path(job["openrft"]["run_dir"])
        console.print(f"[bold]job[/] {job['id']} → {run_dir}")
        if create_only:
            print(run_dir)
            return
    if processes > 1 and "WORLD_SIZE" not in os.environ:
        record = load_job(run_dir)
        if record.status == "paused":
            record.status = "queued"
            save_job(run_dir, record)
        cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={processes}", "--standalone",
               "-m", "openrft.training.worker", str(run_dir)]
        returncode = subprocess.call(cmd)
        report_finished_job(run_dir, load_job(run_dir).status)  # the workers train; the report is written here
        raise typer.Exit(returncode)
    job = run_job(run_dir)
    report_finished_job(run_dir, job["status"])
    _print_outcome(job, run_dir)
    if job["status"] == "failed":
        raise typer.Exit(EXIT_FAILED)


def _create(body, job_file):
    from openrft.data import DatasetError
    from openrft.graders import GraderValidationError
    from openrft.spec import JobSpecError
    from openrft.training import create_job

    try:
        return create_job(body)
    except (JobSpecError, GraderValidationError) as exc:
        console.print(f"[red]error[/] in {job_file}: {exc}")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except DatasetError as exc:
        console.print(f"[red]error[/]: the data has problems; nothing was trained:\n{exc}")
        raise typer.Exit(EXIT_BAD_INPUT) from None


def _print_outcome(job: dict, run_dir: Path) -> None:
    status = job["status"]
    colour = {"succeeded": "green", "failed": "red"}.get(status, "yellow")
    console.print(f"[bold {colour}]{status}[/] {job['id']}  run dir: {run_dir}")
    if job.get("fine_tuned_model"):
        console.print(f"model: {job['fine_tuned_model']}")
    if job.get("error"):
        console.print(f"error: {job['error'].get('message')}")
