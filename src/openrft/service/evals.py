"""`/v1/evals`: evals with `custom` data sources and grader testing criteria, their runs and output items.

An eval is a row of the store (its object). A run is queued in the store and executed by a worker
(`execute_run`) with `openrft.evals.run_eval` into `$OPENRFT_HOME/evals/<run id>/` — the same eval run
directory as `openrft eval` writes, so the dashboard reads both. Data sources:

- `completions` and `responses`: `model`, `input_messages` (a template rendered with each item, or an
  `item_reference`; without it the item's own `messages` are the prompt, as in RFT rows; list-form
  content is joined into text), `sampling_params` (`responses` read `text.format` as the Responses API
  does, `completions` read `response_format`), and `source` (`file_content` or `file_id`);
- `jsonl`: items that carry their `sample` already; they are graded as given, no model is called.

A run is executed `CHUNK_ROWS` items at a time; the output items of each chunk are published as soon as
it is graded (`output_items.partial.jsonl`), so they can be listed while the run is in progress, and a
cancel stops the run at the next chunk. The eval of a fine-tuning job (its `eval_id`) is made from the
job when first asked for, and each validation step of the job (`evals/step-N` in its run directory) is
one completed run of it.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Body, Query, Request
from openai.types.evals.run_retrieve_response import ResultCounts

from openrft import ids, paths
from openrft.engines import Engine, SamplingParams
from openrft.engines.given import GivenSamples, given_sample
from openrft.runs import EvalRun, OutputItem, is_job_dir, load_job, read_eval_run, read_output_items
from openrft.runs.evals import OUTPUT_ITEMS, RUN_FILE
from openrft.service.app import store_of
from openrft.service.errors import APIError, bad_request, not_found
from openrft.service.pagination import page
from openrft.service.store import Store, eval_runs, evals

router = APIRouter(prefix="/evals")
RUN_TYPES = ("completions", "responses", "jsonl")
CHUNK_ROWS = 8  # items per chunk of a run (the rollout path's own prompt batch): output items appear per chunk
PARTIAL_ITEMS = "output_items.partial.jsonl"


# --- evals ---

def _criterion(criterion: Any, index: int) -> dict:
    """A testing criterion as the eval keeps it, with a new `id` (one it was sent with, as returned, is dropped)."""
    from openrft.service.graders import parse
    from openrft.spec import clean_grader

    param = f"testing_criteria[{index}]"
    if not isinstance(criterion, dict):
        raise bad_request(f"Invalid value for '{param}': a testing criterion is a grader object.", param=param)
    criterion = clean_grader(criterion)
    parse(criterion, param=param)
    checked = dict(criterion)
    name = checked.get("name") or f"{checked.get('type')}-{index}"
    return {**checked, "name": name, "id": ids.criterion_id(name)}


def _data_source_config(config: Any) -> dict:
    if not isinstance(config, dict) or config.get("type") != "custom":
        raise bad_request("openrft evals take a data_source_config of type 'custom' "
                          "({'type': 'custom', 'item_schema': {...}}).", param="data_source_config.type")
    item_schema = config.get("item_schema") or {"type": "object"}
    if not isinstance(item_schema, dict):
        raise bad_request("data_source_config.item_schema must be a JSON Schema object.",
                          param="data_source_config.item_schema")
    properties = {"item": item_schema}
    required = ["item"]
    if config.get("include_sample_schema"):
        properties["sample"] = {"type": "object", "properties": {
            "model": {"type": "string"}, "choices": {"type": "array"}, "output_text": {"type": "string"},
            "output_json": {"type": "object"}, "output_tools": {"type": "array"}}}
        required.append("sample")
    return {"type": "custom", "schema": {"type": "object", "properties": properties, "required": required}}


def get_eval(store: Store, eval_id: str) -> dict:
    row = store.get(evals, eval_id)
    job_row = job_of_eval(store, eval_id) if row is None else None
    if job_row is not None:  # the eval of a job that has not been asked for yet
        register_job_eval(store, job_row)
        row = store.get(evals, eval_id)
    if row is None:
        raise not_found("eval", eval_id, param="eval_id")
    return row["object"]


# --- the evals of fine-tuning jobs ---

def job_of_eval(store: Store, eval_id: str) -> dict | None:
    """The job row whose `eval_id` this is (`eval_<id>` of `ftjob-<id>`: `ids.job_eval_id`), or None."""
    from openrft.service.store import jobs

    job_id = ids.job_of_eval_id(eval_id)
    if job_id is None:
        return None
    row = store.get(jobs, job_id)
    if row is None:  # perhaps a run of `openrft train` the store has not indexed yet
        from openrft.service.jobs import index_cli_runs

        index_cli_runs(store)
        row = store.get(jobs, job_id)
    if row is None or not is_job_dir(Path(row["run_dir"])):
        return None
    return row


def register_job_eval(store: Store, job_row: dict) -> dict | None:
    """The eval of a fine-tuning job: its grader as the one testing criterion, its rows as the items."""
    from sqlalchemy.exc import IntegrityError

    job = load_job(Path(job_row["run_dir"]))
    eval_id = job.eval_id
    rl = job.method.reinforcement
    if not eval_id or rl is None:  # supervised and dpo jobs have no grader, no eval
        return None
    grader = {k: v for k, v in rl.grader.items() if k != "id"}
    name = grader.get("name") or grader.get("type")
    obj = {"object": "eval", "id": eval_id, "name": f"{job.id} validation",
           "data_source_config": _data_source_config({"type": "custom", "include_sample_schema": True}),
           "testing_criteria": [{**grader, "name": name, "id": ids.job_criterion_id(str(name), job.id)}],
           "created_at": job.created_at, "metadata": {"fine_tuning_job_id": job.id}}
    try:
        store.insert(evals, id=eval_id, created_at=obj["created_at"], object=obj)
    except IntegrityError:  # registered by a concurrent request
        pass
    return obj


def register_job_runs(store: Store, eval_id: str) -> None:
    """One completed run per validation step the job has written (`evals/step-N` with its run.json)."""
    from sqlalchemy.exc import IntegrityError

    job_row = job_of_eval(store, eval_id)
    if job_row is None:
        return
    run_dir = Path(job_row["run_dir"])
    job = load_job(run_dir)
    known = {row["run_dir"] for row in store.rows(eval_runs, eval_runs.c.eval_id == eval_id)}
    steps = []
    for run_file in run_dir.glob("evals/step-*/run.json"):
        digits = run_file.parent.name.removeprefix("step-")
        if digits.isdigit() and str(run_file.parent) not in known and (run_file.parent / "summary.json").is_file():
            steps.append((int(digits), run_file.parent))
    for step, folder in sorted(steps):
        run = read_eval_run(folder)
        source = {"type": "completions", "model": run.model or job.model,
                  "source": {"type": "file_id", "id": job.validation_file}}
        try:
            store.insert(eval_runs, id=run.id, eval_id=eval_id, created_at=run.created_at,
                         sort_key=run.created_at * 1_000_000_000 + step, run_dir=str(folder),
                         request={"name": f"step-{step}", "metadata": {"step": str(step)}, "data_source": source},
                         status="completed", attempts=0)
        except IntegrityError:  # registered by a concurrent request
            pass


@router.post("")
def create_eval(request: Request, body: dict = Body(...)):
    for field in ("data_source_config", "testing_criteria"):
        if field not in body:
            raise APIError(400, f"Missing required parameter: '{field}'.", param=field,
                           code="missing_required_parameter")
    criteria = body["testing_criteria"]
    if not isinstance(criteria, list) or not criteria:
        raise bad_request("testing_criteria must be a non-empty list of graders.", param="testing_criteria")
    eval_id = ids.eval_id()
    obj = {"object": "eval", "id": eval_id, "name": body.get("name") or eval_id,
           "data_source_config": _data_source_config(body["data_source_config"]),
           "testing_criteria": [_criterion(c, i) for i, c in enumerate(criteria)],
           "created_at": int(time.time()), "metadata": _metadata(body.get("metadata"))}
    store_of(request).insert(evals, id=eval_id, created_at=obj["created_at"], object=obj)
    return obj


def _metadata(value: Any) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > 16 or not all(
            isinstance(k, str) and isinstance(v, str) and len(k) <= 64 and len(v) <= 512 for k, v in value.items()):
        raise bad_request("metadata is at most 16 string keys (64 chars) with string values (512 chars).",
                          param="metadata")
    return value


@router.get("")
def list_evals(request: Request, after: str | None = None, limit: int = Query(20),
               order: str = Query("asc", pattern="^(asc|desc)$"),
               order_by: str = Query("created_at", pattern="^(created_at|updated_at)$")):  # noqa: ARG001 (API parameter)
    rows = store_of(request).rows(evals, newest_first=order == "desc")
    return page([row["object"] for row in rows], after=after, limit=limit, extra_ids=True)


@router.get("/{eval_id}")
def retrieve_eval(request: Request, eval_id: str):
    return get_eval(store_of(request), eval_id)


@router.post("/{eval_id}")
def update_eval(request: Request, eval_id: str, body: dict = Body(...)):
    store = store_of(request)
    obj = get_eval(store, eval_id)
    unknown = set(body) - {"name", "metadata"}
    if unknown:
        raise bad_request(f"Only name and metadata of an eval can be updated (got {sorted(unknown)}).",
                          param=sorted(unknown)[0])
    if "name" in body:
        obj["name"] = str(body["name"])
    if "metadata" in body:
        obj["metadata"] = _metadata(body["metadata"])
    store.update(evals, eval_id, object=obj)
    return obj


@router.delete("/{eval_id}")
def delete_eval(request: Request, eval_id: str):
    store = store_of(request)
    get_eval(store, eval_id)
    for row in store.rows(eval_runs, eval_runs.c.eval_id == eval_id):
        store.delete(eval_runs, row["id"])
    store.delete(evals, eval_id)
    return {"object": "eval.deleted", "deleted": True, "eval_id": eval_id}


# --- runs ---

def _check_data_source(store: Store, source: Any) -> dict:
    from openrft.service.files import resolve

    if not isinstance(source, dict):
        raise APIError(400, "Missing required parameter: 'data_source'.", param="data_source",
                       code="missing_required_parameter")
    kind = source.get("type")
    if kind not in RUN_TYPES:
        raise bad_request(f"Invalid data_source.type {kind!r} (expected one of {list(RUN_TYPES)}).",
                          param="data_source.type")
    if kind != "jsonl":
        if not isinstance(source.get("model"), str) or not source["model"]:
            raise APIError(400, "Missing required parameter: 'data_source.model'.", param="data_source.model",
                           code="missing_required_parameter")
        _check_model(source["model"])
        _params(source)  # refuses what the engine would not take (bad tools, a bad text.format, reasoning_effort)
    items = source.get("source")
    if not isinstance(items, dict) or items.get("type") not in ("file_content", "file_id"):
        raise bad_request("data_source.source must be {'type': 'file_content', 'content': [...]} or "
                          "{'type': 'file_id', 'id': 'file-...'}.", param="data_source.source")
    if items["type"] == "file_id":
        resolve(store, str(items.get("id")), param="data_source.source.id")
    elif not isinstance(items.get("content"), list) or not items["content"]:
        raise bad_request("data_source.source.content must be a non-empty list of {'item': {...}}.",
                          param="data_source.source.content")
    return source


def _check_model(model: str) -> None:
    """Refuse a model no engine can serve: one openrft cannot resolve and `serve --upstream` does not route."""
    from openrft.models import ModelError, resolve_model
    from openrft.service.engine_cache import upstream_route

    if upstream_route(model) is not None:
        return
    try:
        resolve_model(model, prepare=False)
    except ModelError:  # one message whatever the reason: it must not tell which server paths exist
        raise APIError(400, f"The model `{model}` does not exist or you do not have access to it.",
                       param="data_source.model", code="model_not_found") from None


def get_run(store: Store, eval_id: str, run_id: str) -> dict:
    row = store.get(eval_runs, run_id)
    if row is None:
        register_job_runs(store, eval_id)
        row = store.get(eval_runs, run_id)
    if row is None or row["eval_id"] != eval_id:
        raise not_found("eval run", run_id, param="run_id")
    return row


def run_object(store: Store, row: dict) -> dict:
    """The `eval.run` object of a run row: the run as it was requested, with the counts, usage and criteria
    results of its run.json once it is completed (each criterion named by this API's id)."""
    request = row["request"]
    source = request["data_source"]
    run = EvalRun(object="eval.run", id=row["id"], eval_id=row["eval_id"], status=row["status"],
                  model=source.get("model") or "(given samples)", name=request.get("name") or row["id"],
                  created_at=row["created_at"], report_url=None,
                  result_counts=ResultCounts(total=0, errored=0, failed=0, passed=0), per_model_usage=None,
                  per_testing_criteria_results=None, data_source=source, metadata=request.get("metadata") or {},
                  error=row["error"])
    if row["status"] == "completed" and (Path(row["run_dir"]) / RUN_FILE).is_file():
        done = read_eval_run(row["run_dir"])
        criteria_ids = {c["name"]: c["id"] for c in get_eval(store, row["eval_id"])["testing_criteria"]}
        only = next(iter(criteria_ids.values())) if len(criteria_ids) == 1 else None  # a job's one grader
        run.result_counts = done.result_counts
        run.per_model_usage = done.per_model_usage
        run.per_testing_criteria_results = [
            r.model_copy(update={"testing_criteria": criteria_ids.get(r.testing_criteria, only or r.testing_criteria)})
            for r in done.per_testing_criteria_results or []]
    return run.to_dict()


@router.post("/{eval_id}/runs")
def create_run(request: Request, eval_id: str, body: dict = Body(...)):
    store = store_of(request)
    get_eval(store, eval_id)
    source = _check_data_source(store, body.get("data_source"))
    run_id = ids.eval_run_id()
    store.insert(eval_runs, id=run_id, eval_id=eval_id, run_dir=str(paths.evals_dir() / run_id),
                 request={"name": body.get("name"), "metadata": _metadata(body.get("metadata")),
                          "data_source": source},
                 status="queued", queue_order=time.time_ns(), attempts=0)
    row = store.get(eval_runs, run_id)
    assert row is not None  # inserted above
    return run_object(store, row)


@router.get("/{eval_id}/runs")
def list_runs(request: Request, eval_id: str, after: str | None = None, limit: int = Query(20),
              order: str = Query("asc", pattern="^(asc|desc)$"), status: str | None = None):
    store = store_of(request)
    get_eval(store, eval_id)
    register_job_runs(store, eval_id)
    where = [eval_runs.c.eval_id == eval_id] + ([eval_runs.c.status == status] if status else [])
    rows = store.rows(eval_runs, *where, newest_first=order == "desc")
    body = page(rows, after=after, limit=limit, extra_ids=True)
    body["data"] = [run_object(store, row) for row in body["data"]]
    return body


@router.get("/{eval_id}/runs/{run_id}")
def retrieve_run(request: Request, eval_id: str, run_id: str):
    store = store_of(request)
    return run_object(store, get_run(store, eval_id, run_id))


@router.post("/{eval_id}/runs/{run_id}/cancel")
@router.post("/{eval_id}/runs/{run_id}")  # the path of the older SDKs
def cancel_run(request: Request, eval_id: str, run_id: str):
    store = store_of(request)
    row = get_run(store, eval_id, run_id)
    if row["status"] in ("completed", "failed", "canceled"):
        raise bad_request(f"Eval run {run_id} is {row['status']}: it cannot be canceled.", param="run_id",
                          code="invalid_status")
    if not store.update(eval_runs, run_id, eval_runs.c.status == "queued", status="canceled", queue_order=None):
        store.update(eval_runs, run_id, requested_action="cancel")  # the worker stops at the next chunk
    updated = store.get(eval_runs, run_id)
    assert updated is not None  # get_run found it above
    return run_object(store, updated)


@router.delete("/{eval_id}/runs/{run_id}")
def delete_run(request: Request, eval_id: str, run_id: str):
    store = store_of(request)
    row = get_run(store, eval_id, run_id)
    if row["status"] == "in_progress":
        raise bad_request(f"Eval run {run_id} is in progress: cancel it before deleting it.", param="run_id",
                          code="invalid_status")
    store.delete(eval_runs, run_id)
    return {"object": "eval.run.deleted", "deleted": True, "run_id": run_id}


def _output_items(row: dict) -> list[dict]:
    """The output items of a run: all of a completed run, the chunks graded so far of a running or canceled one."""
    run_dir = Path(row["run_dir"])
    completed = row["status"] == "completed" and (run_dir / RUN_FILE).is_file()
    items = read_output_items(run_dir, OUTPUT_ITEMS if completed else PARTIAL_ITEMS)
    return [output_item(item, row) for item in items]


def output_item(item: OutputItem, row: dict) -> dict:
    """An output item as the API returns it: this run's ids, and `sample.error` as `{code, message}` or null."""
    error = item.sample.error
    code = "engine_error" if item.status == "error" or item.sample.finish_reason == "error" else "sample_parse_error"
    sample = {**item.sample.to_dict(), "error": {"code": code, "message": error} if error else None}
    return {**item.to_dict(), "run_id": row["id"], "eval_id": row["eval_id"], "sample": sample}


@router.get("/{eval_id}/runs/{run_id}/output_items")
def list_output_items(request: Request, eval_id: str, run_id: str, after: str | None = None,
                      limit: int = Query(20), status: str | None = Query(None, pattern="^(pass|fail)$"),
                      order: str = Query("asc", pattern="^(asc|desc)$")):
    store = store_of(request)
    items = _output_items(get_run(store, eval_id, run_id))
    if status:
        items = [item for item in items if item["status"] == status]
    if order == "desc":
        items.reverse()
    return page(items, after=after, limit=limit, extra_ids=True)


@router.get("/{eval_id}/runs/{run_id}/output_items/{item_id}")
def retrieve_output_item(request: Request, eval_id: str, run_id: str, item_id: str):
    store = store_of(request)
    for item in _output_items(get_run(store, eval_id, run_id)):
        if item["id"] == item_id:
            return item
    raise not_found("output item", item_id, param="output_item_id")


# --- execution (in a worker) ---

def _items(store: Store, source: dict) -> list[dict]:
    """The `{item, sample?}` entries of a run's source (a JSONL line that is not wrapped is the item)."""
    from openrft.service.files import resolve

    if source["type"] == "file_content":
        entries = source["content"]
    else:
        path = resolve(store, source["id"], param="data_source.source.id")
        entries = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{source['id']} line {number}: not JSON ({exc.msg})") from None
    out = []
    for number, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            raise ValueError(f"data source item {number}: expected an object, got {type(entry).__name__}")
        if isinstance(entry.get("item"), dict):
            out.append({"item": entry["item"], "sample": entry.get("sample")})
        else:
            out.append({"item": entry, "sample": None})
    return out


def _prompt(data_source: dict, item: dict, number: int) -> list[dict]:
    """The chat messages of one item: the rendered template, the referenced item field, or item.messages."""
    from openrft.graders.templating import TemplateError, render

    spec = data_source.get("input_messages")
    if spec is None:
        messages = item.get("messages")
        if not isinstance(messages, list):
            raise ValueError(f"data source item {number}: no input_messages in the run and no messages in the item")
        return [_text_message(m, f"data source item {number}: messages") for m in messages]
    if spec.get("type") == "item_reference":
        ref = str(spec.get("item_reference", "")).removeprefix("item.")
        messages = item.get(ref)
        if not isinstance(messages, list):
            raise ValueError(f"data source item {number}: item.{ref} is not a list of messages")
        return [_text_message(m, f"data source item {number}: item.{ref}") for m in messages]
    out = []
    for message in spec.get("template") or []:
        content = _text_message(message, "input_messages.template")["content"]
        try:
            text = render(content, sample={}, item=item)
        except TemplateError as exc:
            raise ValueError(f"data source item {number}: input_messages: {exc}") from None
        out.append({"role": message.get("role", "user"), "content": text})
    return out


def _text_message(message: Any, where: str) -> dict:
    """A chat message with its content as text (a string, a text part, or a list of text parts and strings)."""
    from openrft.service.chat import content_text

    if not isinstance(message, dict):
        raise ValueError(f"{where}: a message is an object with a role and content")
    try:
        return {**message, "content": content_text(message.get("content"))}
    except APIError as exc:
        raise ValueError(f"{where}: {exc.message}") from None


def _params(data_source: dict) -> SamplingParams:
    """A run's sampling_params as the engine's, read as /v1/chat/completions or /v1/responses reads them."""
    from openrft.engines import EngineError
    from openrft.engines.tools import tool_use
    from openrft.service.chat import engine_params
    from openrft.service.responses import chat_tools, param_name, response_format_of

    given = data_source.get("sampling_params") or {}
    tools = given.get("tools")
    if data_source["type"] == "responses":  # the Responses API's flat text.format and tools
        response_format = response_format_of((given.get("text") or {}).get("format"),
                                             "data_source.sampling_params.text.format")
        if isinstance(tools, list) and all(isinstance(t, dict) and "function" not in t for t in tools):
            tools = chat_tools(tools)
    else:
        response_format = given.get("response_format")  # the engine checks it (json_object, json_schema)
    try:
        tool_use(tools or None)
    except EngineError as exc:
        param, _, reason = str(exc).partition(": ")
        param = param_name(param) if data_source["type"] == "responses" else param
        raise APIError(400, f"Invalid value for 'data_source.sampling_params.{param}': {reason}",
                       param=f"data_source.sampling_params.{param}", code="invalid_value") from None
    max_tokens = given.get("max_completion_tokens") or given.get("max_tokens")
    return engine_params(temperature=given.get("temperature", 1.0), top_p=given.get("top_p", 1.0),
                         max_tokens=int(max_tokens) if max_tokens else None, seed=given.get("seed", 42),
                         response_format=response_format, reasoning_effort=given.get("reasoning_effort"),
                         tools=tools or None)


def execute_run(store: Store, run_id: str, should_stop) -> str:
    """Run one queued eval run into its run directory, `CHUNK_ROWS` items at a time; returns its final status."""
    from openrft.evals import run_eval
    from openrft.graders import build_grader
    from openrft.service.engine_cache import load_engine

    row = store.get(eval_runs, run_id)
    assert row is not None  # the worker runs the rows it claimed
    # The criteria as graders: the `id` the API gave each one is not part of the grader JSON.
    criteria = [{k: v for k, v in c.items() if k != "id"} for c in get_eval(store, row["eval_id"])["testing_criteria"]]
    data_source = row["request"]["data_source"]
    engine: Engine
    try:
        entries = _items(store, data_source["source"])
        if data_source["type"] == "jsonl":
            rows = [{**entry["item"], "messages": (entry["sample"] or {}).get("input") or entry["item"].get("messages")
                     or []} for entry in entries]
            engine = GivenSamples([given_sample(i, entry["sample"]) for i, entry in enumerate(entries)])
            params = SamplingParams()
        else:
            rows = [{**entry["item"], "messages": _prompt(data_source, entry["item"], i + 1)}
                    for i, entry in enumerate(entries)]
            params = _params(data_source)
            engine = load_engine(data_source["model"])
    except (ValueError, APIError) as exc:
        store.update(eval_runs, run_id, error={"code": "invalid_data_source", "message": str(exc)})
        return "failed"
    out_dir = Path(row["run_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    partial = out_dir / PARTIAL_ITEMS
    partial.unlink(missing_ok=True)  # a run re-queued after a crash starts over
    built = [build_grader(criterion) for criterion in criteria]
    name = row["request"].get("name") or run_id
    chunks = []
    for start in range(0, len(rows), CHUNK_ROWS):
        if should_stop() == "cancel":
            return "canceled"
        chunk = run_eval(rows[start:start + CHUNK_ROWS], engine=engine, grader=criteria, graders=built,
                         params=params, name=name, eval_id=row["eval_id"], progress=False)
        chunk.rollouts = [replace(r, index=r.index + start) for r in chunk.rollouts]
        for item in chunk.output_items:
            item.run_id = run_id
            item.datasource_item_id += start
        with partial.open("a", encoding="utf-8") as f:
            f.write("".join(json.dumps(item.to_dict(), default=str) + "\n" for item in chunk.output_items))
        chunks.append(chunk)
    if should_stop() == "cancel":
        return "canceled"
    _write_result(out_dir, run_id, row["eval_id"], name, engine.model_name, criteria, built, chunks)
    partial.unlink(missing_ok=True)
    return "completed"


def _write_result(out_dir: Path, run_id: str, eval_id: str, name: str, model: str, criteria: list[dict],
                  built: list, chunks: list) -> None:
    """The run directory of the whole run (run.json, summary.json, output_items.jsonl) from its chunks."""
    from openrft.evals.run import EvalResult, eval_run, summarize, write_eval

    rollouts = [r for chunk in chunks for r in chunk.rollouts]
    items = [item for chunk in chunks for item in chunk.output_items]
    latency = [chunk.summary["latency"] for chunk in chunks]
    timing = {"sampling": sum(t["sampling_s"] for t in latency), "grading": sum(t["grading_s"] for t in latency),
              "total": sum(t["total_s"] for t in latency)}
    summary = summarize(rollouts, criteria, built, timing=timing, train_rows=None, labels=None, label_key="labels",
                        seed=0)
    first = chunks[0].summary if chunks else {}
    summary.update({key: first.get(key) for key in ("model", "runs", "sampling")}, name=name)
    created = chunks[0].run.created_at if chunks else int(time.time())
    run = eval_run(rollouts, items, criteria, summary, run_id=run_id, eval_id=eval_id, name=name, model=model,
                   created=created)
    write_eval(EvalResult(run, summary, items, rollouts), out_dir)
