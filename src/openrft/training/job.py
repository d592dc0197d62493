"""Jobs: create (validate everything before any model is loaded) and the `fine_tuning.job` object on disk."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from openrft import ids, paths, runs
from openrft.runs import EventLog, Job, save_job, write_json
from openrft.runs.jobs import job_from_dict
from openrft.runs.models import TERMINAL
from openrft.spec import JobSpec, JobSpecError, parse_job
from openrft.training import hyperparams

__all__ = ["TERMINAL", "build_job", "create_job", "list_checkpoints", "load_job", "read_events"]


def resolve_file(ref: str, file_resolver: Callable[[str], Path] | None, field: str) -> Path:
    if ref.startswith("file-"):
        if file_resolver is None:
            raise JobSpecError(f"{field}: {ref} is a file id, but no file store is configured (give a local path)")
        return Path(file_resolver(ref))
    path = Path(ref)
    if not path.is_file():
        raise JobSpecError(f"{field}: file not found: {path}")
    return path


def create_job(body: dict | str | Path, *, run_dir: str | Path | None = None,
               file_resolver: Callable[[str], Path] | None = None, job_id: str | None = None) -> dict:
    """Validate the spec, the starting model's name, the data files (in the format of `method.type`, against the
    grader for RFT), and write the queued job. Nothing heavy is loaded."""
    from openrft.data import load_rows
    from openrft.graders import parse_grader

    spec = parse_job(body)
    kind = spec.method.type
    rl = spec.method.reinforcement  # None for supervised and dpo jobs
    if rl is not None:
        parse_grader(rl.grader)  # raises GraderValidationError naming the field
        check_sampling(spec)
    check_start_model(spec.model)
    train_path = resolve_file(spec.training_file, file_resolver, "training_file")
    valid_path = resolve_file(spec.validation_file, file_resolver, "validation_file") if spec.validation_file else None
    train_rows = load_rows(train_path, method=kind)  # raises DatasetError listing every problem of the file
    valid_rows = load_rows(valid_path, method=kind) if valid_path else []
    if rl is not None:
        _check_grader_fields(rl.grader, train_rows, train_path)
        if valid_rows and valid_path is not None:
            _check_grader_fields(rl.grader, valid_rows, valid_path)
    job_id = job_id or ids.job_id()
    run_dir = Path(run_dir or spec.openrft.output_dir or paths.runs_dir() / job_id)
    job = build_job(spec, job_id=job_id, run_dir=run_dir, train_path=train_path, valid_path=valid_path,
                    n_rows=len(train_rows))
    run_dir.mkdir(parents=True, exist_ok=True)
    save_job(run_dir, job)
    _register(run_dir, job_id)
    write_json(run_dir / "job_spec.json", spec.model_dump(mode="json"))
    EventLog(run_dir).emit("Created fine-tuning job")
    EventLog(run_dir).emit(f"Validated training file: {len(train_rows)} rows"
                           + (f"; validation file: {len(valid_rows)} rows" if valid_path else ""))
    return job.to_dict()


def build_job(spec: JobSpec, *, job_id: str, run_dir: Path | None, train_path: Path, valid_path: Path | None,
              n_rows: int) -> Job:
    """The queued `fine_tuning.job` of a validated spec, its "auto" hyperparameters resolved for the rows it trains
    on: the training file's `n_rows`, at most `max_train_rows` of them (what create_job writes; the doctor and the
    workflow preview a job with it)."""
    kind = spec.method.type
    n_train = min(n_rows, spec.openrft.max_train_rows or n_rows)
    resolved = hyperparams.resolve(spec, n_train)
    seed = resolved["resolved"]["seed"]
    # the other methods' blocks are left out
    method: dict[str, Any] = {"type": kind, kind: spec.method.block.model_dump(mode="json")}
    method[kind]["hyperparameters"] = resolved
    integrations = [i.model_dump(mode="json") for i in spec.integrations or []]
    if any(i["type"] == "wandb" for i in integrations) and "wandb" not in spec.openrft.trackers:
        spec.openrft.trackers.append("wandb")  # a wandb integration starts the W&B tracker
    return job_from_dict({
        "object": "fine_tuning.job", "id": job_id, "created_at": int(time.time()), "error": None,
        "fine_tuned_model": None, "finished_at": None, "hyperparameters": None, "model": spec.model,
        "organization_id": "org-openrft", "result_files": [], "status": "queued", "trained_tokens": None,
        "training_file": spec.training_file, "validation_file": spec.validation_file, "seed": seed,
        "estimated_finish": None, "integrations": integrations, "metadata": spec.metadata,
        "method": method, "suffix": spec.suffix, "user_provided_suffix": spec.suffix, "usage_metrics": None,
        "shared_with_openai": False,
        "eval_id": ids.job_eval_id(job_id) if kind == "reinforcement" else None,
        "openrft": {**spec.openrft.model_dump(mode="json"), "run_dir": str(run_dir) if run_dir else None,
                    "training_path": str(train_path), "validation_path": str(valid_path) if valid_path else None},
    })


def check_start_model(model: str) -> None:
    """Refuse a model that does not exist (a `ft:` name no run has, a missing checkpoint folder), naming `model`.
    Nothing is loaded or converted."""
    from openrft.models import ModelError, resolve_model

    try:
        resolve_model(model, prepare=False)
    except ModelError as exc:
        raise JobSpecError(f"model: {exc}", param="model") from None


MIN_ANSWER_TOKENS = 16  # room a job must leave for the answer after the longest reasoning segment


def check_sampling(spec: JobSpec) -> None:
    """Refuse, before any model is loaded, what would only fail (or silently mislead) once training runs:
    a response_format the grammar compiler cannot build, a reasoning budget that leaves no room for an answer
    within `openrft.max_tokens`, and a KL penalty with full fine-tuning (there is no frozen reference)."""
    from openrft.engines.base import EngineError
    from openrft.engines.reasoning import BUDGETS
    from openrft.engines.structured import check_grammar, response_schema

    rl, ext = spec.rl, spec.openrft
    try:
        check_grammar(response_schema(rl.response_format))
    except EngineError as exc:
        raise JobSpecError(f"method.reinforcement.{exc}") from None
    effort = rl.hyperparameters.reasoning_effort
    budget = BUDGETS.get(effort, 0)
    if budget and ext.max_tokens < budget + MIN_ANSWER_TOKENS:
        raise JobSpecError(f"method.reinforcement.hyperparameters.reasoning_effort: {effort!r} lets the model reason "
                           f"for up to {budget} tokens, which leaves no room for an answer within openrft.max_tokens="
                           f"{ext.max_tokens}: raise openrft.max_tokens to at least {budget + MIN_ANSWER_TOKENS} or "
                           f"lower the effort")
    if ext.kl_coef > 0 and ext.finetune == "full":
        raise JobSpecError(f"openrft.kl_coef: {ext.kl_coef} needs a frozen reference model, which full fine-tuning "
                           "does not keep (LoRA's reference is the base with the adapter off): use "
                           "openrft.finetune: lora, or kl_coef: 0")


def _register(run_dir: Path, job_id: str) -> None:
    """A run kept outside `$OPENRFT_HOME/runs` is linked there, so its models, events and checkpoints are
    found by name (`ft:…`), by the API and by the dashboard like any other run."""
    link = paths.runs_dir() / job_id
    if link.resolve() != run_dir.resolve() and not link.exists():
        link.symlink_to(run_dir.resolve(), target_is_directory=True)


def _check_grader_fields(grader: dict, rows: list[dict], path: Path) -> None:
    """Every `{{ item.x }}` the grader reads must exist in every row: checked before any compute."""
    from openrft.graders import template_variables

    missing = []
    for name in sorted(template_variables(grader)):
        top = name.split(".")[0].split("[")[0]
        for line, row in enumerate(rows, 1):
            if top not in row:
                missing.append(f"{path}:{line}: field '{top}': used by the grader as item.{name} but missing")
    if missing:
        shown = "\n".join(missing[:50]) + (f"\n… and {len(missing) - 50} more" if len(missing) > 50 else "")
        raise JobSpecError(f"{len(missing)} grader field problem(s):\n{shown}")


def load_job(run_dir: str | Path) -> dict:
    """The `fine_tuning.job` object of a run directory, as JSON (typed: `openrft.runs.load_job`)."""
    return runs.load_job(run_dir).to_dict()


def list_checkpoints(run_dir: str | Path) -> list[dict]:
    """The `fine_tuning.job.checkpoint` objects of a run, newest step first, as JSON (typed:
    `openrft.runs.list_checkpoints`)."""
    return [record.to_dict() for record in runs.list_checkpoints(run_dir)]


def read_events(run_dir: str | Path) -> list[dict]:
    """The `fine_tuning.job.event` objects of a run, oldest first, as JSON (`openrft.runs.read_events`)."""
    return runs.read_events(run_dir)

