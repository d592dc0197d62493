"""`/v1/fine_tuning/jobs`: create, list, retrieve, cancel, pause, resume, events, checkpoints.

A job is its run directory (job.json, events.jsonl, checkpoints/), written by `openrft.training`; the
store indexes it and queues it for the workers. Runs that `openrft train` wrote under
`$OPENRFT_HOME/runs` are indexed when jobs are listed, so they show up here too (read-only: the CLI
process runs them, not the workers).

Status changes made while no worker holds a job (cancel or pause of a queued job, resume, re-queue after
a crash) are written both to the store and to the job's run directory, with an event, so that the run
directory stays the one record of a job.

The job object the API returns is job.json without the server's paths, with what the run directory
tells beside it: `estimated_finish` from the step timings of a running job, `result_files` naming the
per-step metrics CSV of a finished job (a file of the Files API), and the resolved `hyperparameters`.
Its `eval_id` is an eval of the evals API (see evals.register_job_eval) with one run per validation step.
Metrics events get `usage.graders`: each grader's calls per step (the trainer does not record the
token usage of model graders, so those fields are null).
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import re
import time
import uuid
from pathlib import Path

from fastapi import APIRouter, Body, Query, Request
from sqlalchemy.exc import IntegrityError

from openrft import ids, paths
from openrft.runs import (
    TERMINAL,
    EventLog,
    MetricsData,
    ResolvedJob,
    is_job_dir,
    job_dirs,
    load_job,
    read_eval_run,
    save_job,
)
from openrft.runs.models import SERVER_PATHS, SUPERVISED_HYPERPARAMETERS
from openrft.service.app import store_of
from openrft.service.errors import APIError, bad_request, not_found
from openrft.service.files import resolve
from openrft.service.pagination import page
from openrft.service.store import Store, files, jobs
from openrft.spec import METHOD_TYPES

router = APIRouter(prefix="/fine_tuning/jobs")
permissions = APIRouter(prefix="/fine_tuning/checkpoints")
_METADATA_KEY = re.compile(r"^metadata\[(.+)\]$")
RESULTS_FILENAME = "step_metrics.csv"


# --- the run directory, for changes made outside a worker ---

def set_status(run_dir: Path, status: str, message: str, *, level: str = "info") -> dict:
    """Write `status` into run_dir/job.json and log a message event (training's writers); returns the job."""
    job = load_job(run_dir)
    job.status = status  # type: ignore[assignment]  # the statuses this module sets are JobStatus values
    if status in TERMINAL:
        job.finished_at = job.finished_at or int(time.time())
    save_job(Path(run_dir), job)
    append_event(run_dir, message, level=level)
    return job.to_dict()


def append_event(run_dir: Path, message: str, *, level: str = "info") -> None:
    EventLog(Path(run_dir)).emit(message, level=level)


# --- reading jobs ---

def index_cli_runs(store: Store) -> None:
    """Add the run directories under $OPENRFT_HOME/runs that the store does not know (CLI runs)."""
    known = {row["id"] for row in store.rows(jobs)}
    for run_dir in job_dirs(paths.runs_dir()):
        try:
            job = load_job(run_dir)
        except Exception:  # a half-written or foreign folder: not a job
            continue
        if job.id in known:
            continue
        created = job.created_at
        try:
            store.insert(jobs, id=job.id, created_at=created, sort_key=created * 1_000_000_000,
                         metadata=job.metadata, run_dir=str(run_dir), source="cli", status=job.status, attempts=0)
        except IntegrityError:  # a concurrent request indexed it first
            pass
        known.add(job.id)


def job_object(store: Store, row: dict) -> dict:
    """The `fine_tuning.job` object: job.json, with the store's queue status for jobs the workers run."""
    from openrft.runs import read_events

    record = load_job(Path(row["run_dir"]))
    job = record.to_dict()
    if row["source"] == "api" and record.status not in TERMINAL:
        job["status"] = row["status"]
    elif row["source"] != "api" and record.status != row["status"]:
        store.update(jobs, row["id"], status=record.status)
    if record.openrft is not None:
        job["openrft"] = {k: v for k, v in record.openrft.model_dump(exclude_unset=True).items()
                          if k not in SERVER_PATHS}
    hp = record.method.hyperparameters
    given = hp.to_dict() if hp is not None else {}
    job["hyperparameters"] = {k: given[k] for k in SUPERVISED_HYPERPARAMETERS if k in given} or record.hyperparameters
    events = [e for e in read_events(Path(row["run_dir"])) if e.get("type") == "metrics" and e.get("data")]
    if job["status"] == "running":
        job["estimated_finish"] = estimated_finish(events)
    if job["status"] in TERMINAL and events:
        metrics = [MetricsData.model_validate(e["data"]) for e in events]
        job["result_files"] = [results_file(store, row["id"], metrics, record.kind)]
    return job


def estimated_finish(events: list[dict]) -> int | None:
    """When a running job should end: its last step's time plus the mean step time for each step left."""
    steps = [(e, MetricsData.model_validate(e["data"])) for e in events]
    steps = [(e, data) for e, data in steps if data.step >= 1]
    durations = [data.timing.step.full_iteration for _, data in steps
                 if data.timing and data.timing.step.full_iteration is not None]
    if not steps or not durations:
        return None
    event, last = steps[-1]
    left = max(0, (last.total_steps or 0) - last.step)
    return int(event["created_at"] + left * sum(durations) / len(durations))


# The per-step CSV of the methods that learn from fixed rows: OpenAI's SFT columns (its `train_accuracy` is the
# events' train_mean_token_accuracy), then the full validation figures of the checkpoint steps.
OFFLINE_COLUMNS = {
    "supervised": [("step", "step"), ("train_loss", "train_loss"), ("train_accuracy", "train_mean_token_accuracy"),
                   ("valid_loss", "valid_loss"), ("valid_mean_token_accuracy", "valid_mean_token_accuracy"),
                   ("full_valid_loss", "full_valid_loss"),
                   ("full_valid_mean_token_accuracy", "full_valid_mean_token_accuracy")],
    "dpo": [(name, name) for name in ("step", "train_loss", "train_reward_accuracy", "train_reward_margin",
                                      "valid_loss", "valid_reward_accuracy", "valid_reward_margin", "full_valid_loss",
                                      "full_valid_reward_accuracy", "full_valid_reward_margin")],
}


def results_csv(metrics: list[MetricsData], method: str = "reinforcement") -> str:
    """The per-step metrics of a job as CSV: for RFT step, train and valid reward, then each grader's; for SFT
    and DPO their losses and accuracies (OFFLINE_COLUMNS)."""
    if method in OFFLINE_COLUMNS:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([header for header, _ in OFFLINE_COLUMNS[method]])
        for data in metrics:
            writer.writerow([data.flat(key) for _, key in OFFLINE_COLUMNS[method]])
        return out.getvalue()
    graders = []
    for data in metrics:
        for entry in data.scores.graders if data.scores else []:
            if entry.name not in graders:
                graders.append(entry.name)
    columns = ["step", "train_mean_reward", "full_valid_mean_reward", "full_valid_mean_parse_error",
               "completion_tokens_mean", "reasoning_tokens_mean"]
    header = columns + [f"graders/{name}/{split}_reward_mean" for name in graders for split in ("train", "valid")]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for data in metrics:
        scores = {entry.name: entry for entry in (data.scores.graders if data.scores else [])}
        writer.writerow([data.flat(column) for column in columns] + [
            scores[name].figure(f"{split}_reward_mean") if name in scores else None
            for name in graders for split in ("train", "valid")])
    return out.getvalue()


def results_file(store: Store, job_id: str, metrics: list[MetricsData], method: str = "reinforcement") -> str:
    """The id of the results file of a finished job, written into the Files API the first time it is asked for."""
    from sqlalchemy.exc import IntegrityError

    file_id = ids.results_file_id(job_id)
    if store.get(files, file_id) is not None:
        return file_id
    data = results_csv(metrics, method).encode()
    folder = paths.files_dir()
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{file_id}.{uuid.uuid4().hex}.tmp"
    tmp.write_bytes(data)
    tmp.replace(folder / file_id)
    try:
        store.insert(files, id=file_id, filename=RESULTS_FILENAME, purpose="fine-tune-results", bytes=len(data))
    except IntegrityError:  # written by a concurrent request
        pass
    return file_id


def _stored(store: Store, job_id: str) -> dict:
    """The row of a job this request has just created or found (so it is there)."""
    row = store.get(jobs, job_id)
    assert row is not None
    return row


def get_row(store: Store, job_id: str) -> dict:
    row = store.get(jobs, job_id)
    if row is None:
        raise not_found("fine-tuning job", job_id, param="fine_tuning_job_id")
    if not is_job_dir(Path(row["run_dir"])):
        raise APIError(404, f"Fine-tuning job '{job_id}' has lost its run directory (job.json is gone).",
                       param="fine_tuning_job_id", code="run_directory_missing")
    return row


def _metadata_filter(request: Request) -> tuple[dict[str, str], bool]:
    wanted, none_only = {}, False
    for key, value in request.query_params.multi_items():
        match = _METADATA_KEY.match(key)
        if match:
            wanted[match.group(1)] = value
        elif key == "metadata" and value == "null":
            none_only = True
    return wanted, none_only


# --- routes ---

@router.post("")
def create(request: Request, body: dict = Body(...)):
    from openrft.training import create_job

    store = store_of(request)
    for field in ("model", "training_file"):
        if not body.get(field):
            raise APIError(400, f"Missing required parameter: '{field}'.", param=field,
                           code="missing_required_parameter")
    method = body.get("method")
    if not isinstance(method, dict) or method.get("type") not in METHOD_TYPES:
        raise bad_request("method.type must be 'supervised', 'dpo' or 'reinforcement', with the block of that name "
                          f"(got {json.dumps(method)}).", param="method.type")
    _check_model(body["model"])
    for field in ("training_file", "validation_file"):
        if body.get(field) is not None:
            resolve(store, body[field], param=field)
    _check_integrations(body.get("integrations"))
    if isinstance(body.get("openrft"), dict) and body["openrft"].get("output_dir"):
        raise bad_request("openrft.output_dir cannot be set through the API: jobs of the service live in "
                          "$OPENRFT_HOME/runs.", param="openrft.output_dir")
    # The row comes first (validating_files) so that a concurrent listing never takes the new run
    # directory for a CLI run; it is removed again when the job is refused.
    job_id = ids.job_id()
    run_dir = paths.runs_dir() / job_id
    store.insert(jobs, id=job_id, metadata=body.get("metadata"), run_dir=str(run_dir), source="api",
                 status="validating_files", attempts=0)
    try:
        job = create_job(body, run_dir=run_dir, job_id=job_id, file_resolver=lambda file_id: resolve(store, file_id))
    except BaseException as exc:
        store.delete(jobs, job_id)
        refused = _refusal(exc, body, store)
        if refused is None:
            raise
        raise refused from None
    store.update(jobs, job_id, jobs.c.status == "validating_files", status="queued", queue_order=time.time_ns(),
                 created_at=int(job["created_at"]), metadata=job.get("metadata"))
    from openrft.service.evals import register_job_eval

    register_job_eval(store, _stored(store, job_id))
    return job_object(store, _stored(store, job_id))


def _check_model(model: str) -> None:
    """A 400 naming `model` for a name openrft cannot load (nothing is loaded or converted here)."""
    from openrft.models import ModelError, resolve_model

    if not isinstance(model, str):
        raise bad_request("Invalid type for 'model': expected a string.", param="model")
    try:
        resolve_model(model, prepare=False)
    except ModelError:  # one message whatever the reason: it must not tell which server paths exist
        raise APIError(400, f"The model `{model}` does not exist or you do not have access to it.", param="model",
                       code="model_not_found") from None


def _check_integrations(integrations) -> None:
    """A wandb integration needs the wandb package on this server: refused up front rather than skipped later."""
    if not isinstance(integrations, list):
        return
    wanted = any(isinstance(i, dict) and i.get("type") == "wandb" for i in integrations)
    if wanted and importlib.util.find_spec("wandb") is None:
        raise bad_request("A wandb integration was asked for, but the wandb package is not installed on this "
                          "openrft server (pip install wandb, and set WANDB_API_KEY for its workers), so the job "
                          "could not log to W&B. Remove the integration or install wandb.",
                          param="integrations", code="integration_unavailable")


def _refusal(exc: BaseException, body: dict, store: Store) -> APIError | None:
    """create_job's refusal of a spec, grader or data file as a 400 naming the parameter; None for a crash."""
    from pydantic import ValidationError

    from openrft.data import DatasetError
    from openrft.graders import GraderValidationError
    from openrft.spec import JobSpecError

    if isinstance(exc, APIError):
        return exc
    if isinstance(exc, GraderValidationError):
        return APIError(400, f"Invalid grader: {exc}", param=f"method.reinforcement.grader.{exc.field}".rstrip("."),
                        code="invalid_grader")
    if isinstance(exc, DatasetError):
        names = {str(resolve(store, body[field])): (field, body[field])
                 for field in ("training_file", "validation_file") if body.get(field)}
        first = names.get(exc.problems[0].file, ("training_file", None))[0] if exc.problems else "training_file"
        problems = [{"file": names.get(p.file, (None, p.file))[1], "line": p.line, "field": p.field,
                     "reason": p.reason} for p in exc.problems]
        return APIError(400, str(exc), param=first, code="invalid_file_format", extra={"problems": problems})
    if isinstance(exc, JobSpecError):
        param = getattr(exc, "param", None)
        if param is None and isinstance(exc.__cause__, ValidationError) and exc.__cause__.errors():
            param = ".".join(str(part) for part in exc.__cause__.errors()[0]["loc"])
        named = re.match(r"^([A-Za-z_][\w.\[\]]*): ", str(exc))  # "method.reinforcement.response_format: ..."
        if param is None and named and "." in named.group(1):
            param = named.group(1)
        return APIError(400, str(exc), param=param, code="invalid_value")
    return None


@router.get("")
def list_jobs(request: Request, after: str | None = None, limit: int = Query(20)):
    store = store_of(request)
    index_cli_runs(store)
    wanted, none_only = _metadata_filter(request)
    selected = []
    for row in store.rows(jobs):
        meta = row["metadata"] or {}
        if none_only and meta:
            continue
        if any(meta.get(key) != value for key, value in wanted.items()):
            continue
        if not is_job_dir(Path(row["run_dir"])):
            continue
        selected.append(row)
    # Page on the rows first, so that only the job.json files of one page are read.
    body = page(selected, after=after, limit=limit)
    body["data"] = [job_object(store, row) for row in body["data"]]
    return body


@router.get("/{job_id}")
def retrieve(request: Request, job_id: str):
    store = store_of(request)
    row = store.get(jobs, job_id)
    if row is None:
        index_cli_runs(store)
    return job_object(store, get_row(store, job_id))


@router.post("/{job_id}/cancel")
def cancel(request: Request, job_id: str):
    store = store_of(request)
    row = get_row(store, job_id)
    job = job_object(store, row)
    _only_api(row, "cancel")
    if job["status"] in TERMINAL:
        raise bad_request(f"Job {job_id} has already {job['status']}: it cannot be cancelled.",
                          param="fine_tuning_job_id", code="invalid_status")
    if store.update(jobs, job_id, jobs.c.status.in_(["queued", "paused"]), status="cancelled",
                    queue_order=None):
        set_status(Path(row["run_dir"]), "cancelled", "Fine-tuning job cancelled")
    else:  # a worker holds it: it stops at the next step boundary
        store.update(jobs, job_id, requested_action="cancel")
        append_event(Path(row["run_dir"]), "Cancellation requested: the job stops at the next step boundary")
    return job_object(store, _stored(store, job_id))


@router.post("/{job_id}/pause")
def pause(request: Request, job_id: str):
    store = store_of(request)
    row = get_row(store, job_id)
    job = job_object(store, row)
    _only_api(row, "pause")
    if job["status"] not in ("queued", "running"):
        raise bad_request(f"Job {job_id} is {job['status']}: only a queued or running job can be paused.",
                          param="fine_tuning_job_id", code="invalid_status")
    if store.update(jobs, job_id, jobs.c.status == "queued", status="paused", queue_order=None):
        set_status(Path(row["run_dir"]), "paused", "Fine-tuning job paused")
    else:
        store.update(jobs, job_id, jobs.c.status == "running", requested_action="pause")
        append_event(Path(row["run_dir"]), "Pause requested: a checkpoint is written at the next step boundary")
    return job_object(store, _stored(store, job_id))


@router.post("/{job_id}/resume")
def resume(request: Request, job_id: str):
    store = store_of(request)
    row = get_row(store, job_id)
    _only_api(row, "resume")
    if row["status"] != "paused":
        raise bad_request(f"Job {job_id} is {job_object(store, row)['status']}: only a paused job can be resumed.",
                          param="fine_tuning_job_id", code="invalid_status")
    if store.update(jobs, job_id, jobs.c.status == "paused", status="queued", queue_order=time.time_ns(),
                    requested_action=None):
        set_status(Path(row["run_dir"]), "queued", "Fine-tuning job resumed")
    return job_object(store, _stored(store, job_id))


def _only_api(row: dict, action: str) -> None:
    if row["source"] != "api":
        raise bad_request(f"Job {row['id']} was started by `openrft train` in its own process: "
                          f"it cannot be {action}d through the API.", param="fine_tuning_job_id",
                          code="not_managed")


@router.get("/{job_id}/events")
def events(request: Request, job_id: str, after: str | None = None, limit: int = Query(20)):
    from openrft.runs import read_events

    store = store_of(request)
    row = get_row(store, job_id)
    newest_first = list(reversed(read_events(Path(row["run_dir"]))))
    body = page(newest_first, after=after, limit=limit)
    if any(e.get("type") == "metrics" for e in body["data"]):
        job = ResolvedJob.load(Path(row["run_dir"]))
        body["data"] = [_with_grader_usage(e, job, Path(row["run_dir"])) for e in body["data"]]
    return body


def _with_grader_usage(event: dict, job: ResolvedJob, run_dir: Path) -> dict:
    """A metrics event with `usage.graders` filled: each grader's calls in the step (train and validation) and
    the tokens its judge model used (openrft.graders.usage).

    The validation tokens come from the step's validation run (`evals/step-N/summary.json`). The training-batch
    tokens are those the trainer put in the event's `usage.graders`; when it records none they are null.
    """
    from openrft.graders.usage import grader_usage_entries

    data = event.get("data") or {}
    usage = data.get("usage")
    if event.get("type") != "metrics" or not isinstance(usage, dict):
        return event
    if job.kind != "reinforcement":  # supervised and dpo jobs have no grader
        return event
    step = int(data.get("step") or 0)
    train_calls = job.batch_size * job.group_size if step >= 1 else 0
    valid_calls: int | None = 0
    valid_usage = None
    step_dir = run_dir / "evals" / f"step-{step}"
    if "valid_reward_mean" in (data.get("scores") or {}) and (step_dir / "run.json").is_file():
        try:
            valid_calls = read_eval_run(step_dir).result_counts.total
        except ValueError:  # an unreadable run.json, or not an eval run (RunFileError)
            valid_calls = None
        try:
            valid_usage = json.loads((step_dir / "summary.json").read_text())["grader_usage"][0]
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            valid_usage = None  # a run written before openrft recorded grader usage
    graders = usage.get("graders")
    recorded = graders if isinstance(graders, list) else []
    entries = []
    for k, entry in enumerate(grader_usage_entries(job.grader_spec, {"train": None, "valid": valid_usage})):
        given = recorded[k] if k < len(recorded) and isinstance(recorded[k], dict) else {}
        entry.update({key: value for key, value in given.items() if key.startswith("train_")})
        entry.setdefault("train_calls", train_calls)
        entry["valid_calls"] = valid_calls
        entries.append(entry)
    return {**event, "data": {**data, "usage": {**usage, "graders": entries}}}


@router.get("/{job_id}/checkpoints")
def checkpoints(request: Request, job_id: str, after: str | None = None, limit: int = Query(10)):
    from openrft.runs import list_checkpoints

    row = get_row(store_of(request), job_id)
    found = [record.to_dict() for record in list_checkpoints(Path(row["run_dir"]))]  # newest step first
    return page(found, after=after, limit=limit, extra_ids=True)


@permissions.api_route("/{checkpoint:path}/permissions", methods=["GET", "POST"])
@permissions.delete("/{checkpoint:path}/permissions/{permission_id}")
def checkpoint_permissions(checkpoint: str, permission_id: str | None = None):  # noqa: ARG001 (route path parameters)
    raise APIError(400, "Checkpoint permissions are not supported by openrft: there are no projects to share a "
                   "checkpoint with; every model and checkpoint of this server can be used by anyone who has its "
                   "API key.", param="fine_tuned_model_checkpoint", code="unsupported_endpoint")
