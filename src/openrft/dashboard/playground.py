"""The playground: one prompt, or a validation item, sent to a job's base model and checkpoints side by side.

Each answer is sampled with the job's `response_format` (and reasoning effort) and graded at once by the
job's grader, against the chosen validation item's reference fields (a free prompt is graded against an
empty item). Models are named by the ids `playground_view` lists (`base`, `step-N`, `final`), never by a
path from the request: the page can only load the models of the job it shows.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from openrft import runs
from openrft.dashboard.rundata import RunDirError, RunRef
from openrft.data.formats import last_user_text
from openrft.errors import InputError
from openrft.runs import ResolvedJob, RunFileError

MAX_ITEMS = 200  # validation items offered in the page's picker
PREVIEW_CHARS = 90


class PlaygroundError(InputError):
    """A request the playground refuses (an unknown model id or item); the message says which."""


def job_of(ref: RunRef) -> ResolvedJob:
    try:
        return ResolvedJob.load(ref.path)
    except (RunFileError, FileNotFoundError) as exc:
        raise RunDirError(str(exc)) from None


def models(ref: RunRef, job: ResolvedJob) -> list[dict]:
    """The models of a job: its base, each complete checkpoint, and the final model when there is one."""
    rows: list[dict[str, Any]] = [{"id": "base", "label": f"base: {job.model}", "engine_model": job.model, "step": 0}]
    for record in sorted(runs.list_checkpoints(ref.path), key=lambda r: r.step_number):
        folder = runs.checkpoint_dir(ref.path, record.step_number)
        rows.append({"id": folder.name, "label": record.fine_tuned_model_checkpoint, "engine_model": str(folder),
                     "step": record.step_number, "valid_reward": record.metrics.valid_reward})
    final = runs.final_dir(ref.path)
    if runs.checkpoints.has_model(final):
        rows.append({"id": "final", "label": job.job.fine_tuned_model or "final", "engine_model": str(final),
                     "step": None})
    return rows


def validation_rows(job: ResolvedJob) -> list[dict]:
    """The first MAX_ITEMS rows of the job's validation file (none when it has none)."""
    from openrft.data import DatasetError, load_rows

    path = job.validation_path
    if not path or not Path(path).is_file():
        return []
    try:
        rows = load_rows(path, method=job.kind)[:MAX_ITEMS]
    except DatasetError as exc:
        raise RunDirError(str(exc)) from None
    return [_as_prompt(row, job.kind) for row in rows]


def _as_prompt(row: dict, method: str) -> dict:
    """An SFT or DPO validation row as a prompt row: the messages before the last assistant answer, or the input."""
    if method == "dpo":
        return {**row, "messages": row["input"]["messages"]}
    if method == "supervised":
        messages = row["messages"]
        while messages and messages[-1].get("role") == "assistant":
            messages = messages[:-1]
        return {**row, "messages": messages}
    return row


def playground_view(ref: RunRef) -> dict:
    """What the page needs: the models to pick from, the validation items, the job's format and grader."""
    job = job_of(ref)
    rl = job.job.method.reinforcement  # supervised and dpo jobs have no grader
    grader = rl.grader if rl else {}
    items = []
    for index, row in enumerate(validation_rows(job)):
        text = last_user_text(row)
        items.append({"index": index, "messages": row.get("messages") or [],
                      "preview": text[:PREVIEW_CHARS] + ("…" if len(text) > PREVIEW_CHARS else "")})
    return {"key": ref.key, "id": job.id, "status": job.job.status, "model": job.model,
            "models": [{k: v for k, v in m.items() if k != "engine_model"} for m in models(ref, job)],
            "items": items, "response_format": rl.response_format if rl else None,
            "grader": {"type": grader.get("type"), "name": grader.get("name")},
            "max_tokens": job.options.max_tokens}


def answer(ref: RunRef, engines: Any, request: dict) -> dict:
    """Sample one answer of the model `request["model"]` and grade it with the job's grader.

    `request`: `model` (an id of `playground_view`), `item` (a validation item index, or None), `messages`
    (the prompt; default: the item's), `temperature` (default 0: greedy), `max_tokens` (default: the job's).
    """
    from openrft.evals.rollout import grader_item

    job = job_of(ref)
    rl = job.job.method.reinforcement  # supervised and dpo jobs have no grader
    by_id = {m["id"]: m for m in models(ref, job)}
    model = by_id.get(str(request.get("model")))
    if model is None:
        raise PlaygroundError(f"model {request.get('model')!r}: not one of this job's models ({', '.join(by_id)})")
    row: dict = {}
    if request.get("item") is not None:
        rows = validation_rows(job)
        index = int(request["item"])
        if not 0 <= index < len(rows):
            raise PlaygroundError(f"item {index}: this job has {len(rows)} validation items")
        row = rows[index]
    messages = request.get("messages") or row.get("messages")
    if not messages or not all(isinstance(m, dict) and m.get("role") and isinstance(m.get("content"), str)
                               for m in messages):
        raise PlaygroundError("messages: give a prompt (a list of {role, content} messages) or a validation item")
    params = replace(job.sampling_params(1, int(request.get("seed") or 0)),
                     temperature=float(request.get("temperature") or 0.0), top_p=1.0,
                     max_tokens=int(request.get("max_tokens") or job.options.max_tokens))
    began = time.perf_counter()
    [samples] = engines.generate(model["engine_model"], [messages], params)
    sample = samples[0]
    seconds = time.perf_counter() - began
    grade = None
    if not sample.error and rl is not None:
        grade = job.grader.grade(sample.grader_sample(), grader_item(row))
    return {"model": model["id"], "label": model["label"], "output_text": sample.output_text,
            "output_json": sample.output_json, "reasoning_text": sample.reasoning_text,
            "parse_error": sample.parse_error, "finish_reason": sample.finish_reason, "error": sample.error,
            "completion_tokens": sample.completion_tokens, "seconds": round(seconds, 3),
            "reward": grade.reward if grade else None, "grade": grade.to_run_response() if grade else None,
            "graded_against": "item" if row else "empty item (free prompt)"}
