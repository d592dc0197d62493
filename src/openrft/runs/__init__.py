"""The run directory, this system's database: one typed home for what a job or an eval run writes.

    <run dir>/job.json                         Job (openai FineTuningJob + the `openrft` block)
    <run dir>/events.jsonl                     Event lines; a metrics event's data is MetricsData
    <run dir>/checkpoints/step-N/checkpoint.json   Checkpoint (openai FineTuningJobCheckpoint)
    <run dir>/checkpoints/final/               the final model
    <run dir>/evals/step-N/                    the validation eval run of step N: run.json (EvalRun),
                                               output_items.jsonl (OutputItem lines), summary.json (a dict)
    <run dir>/state/                           the resume state (openrft.training.checkpoints)

- `models`: the typed files; `files`: the one atomic writer and the one tolerant reader;
- `load_job` / `save_job`, `EventLog` / `read_events` / `read_metrics`, `list_checkpoints` / `best_checkpoint`,
  `read_eval_run` / `read_output_items` (any eval run's folder: a step's, `openrft eval`'s, the API's);
- `ResolvedJob`: a job read once, answering rows, labels, sampling parameters and validation steps;
- `discover` (every run under some folders), `find_fine_tuned` (a `ft:` name's checkpoint folder).

The CLI, the API, the dashboard, the doctor, the demo and resume all read a run directory through here.
"""

from openrft.runs.checkpoints import best_checkpoint, checkpoint_dir, final_dir, list_checkpoints, score
from openrft.runs.discover import RunRef, discover, find_fine_tuned, job_dirs, step_dirs
from openrft.runs.evals import read_eval_run, read_output_items
from openrft.runs.events import EventLog, metrics_steps, read_events, read_metrics
from openrft.runs.files import RunFileError, read_json, read_jsonl, write_json
from openrft.runs.jobs import is_job_dir, load_job, save_job
from openrft.runs.models import (
    TERMINAL,
    Checkpoint,
    EvalRun,
    Event,
    Job,
    MetricsData,
    OutputItem,
)
from openrft.runs.resolved import ResolvedJob

__all__ = [
    "TERMINAL", "Checkpoint", "EvalRun", "Event", "EventLog", "Job", "MetricsData", "OutputItem", "ResolvedJob",
    "RunFileError", "RunRef", "best_checkpoint", "checkpoint_dir", "discover", "final_dir", "find_fine_tuned",
    "is_job_dir", "job_dirs", "list_checkpoints", "load_job", "metrics_steps", "read_eval_run", "read_events",
    "read_json", "read_jsonl", "read_metrics", "read_output_items", "save_job", "score", "step_dirs", "write_json",
]
