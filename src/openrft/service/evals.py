"""`/v1/evals`: evals with `custom` data sources and grader testing criteria, their runs and output items.

An eval is a row of the store (its object). A run is queued in the store and executed by a worker
(`execute_run`) with `openrft.evals.run_eval` into `$OPENRFT_HOME/evals/<run id>/` — the same eval run
directory as `openrft eval` writes, so the dashboard reads both. Data sources:

- `completions` (and `responses`): `model`, `input_messages` (a template rendered with each item, or an
  `item_reference`; without it the item's own `messages` are the prompt, as in RFT rows),
  `sampling_params`, and `source` (`file_content` or `file_id`);
- `jsonl`: items that carry their `sample` already; they are graded as given, no model is called.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Body, Query, Request

from openrft import paths
from openrft.engines import Sample, SamplingParams
from openrft.service.app import store_of
from openrft.service.errors import APIError, bad_request, not_found
from openrft.service.pagination import page
from openrft.service.store import Store, eval_runs, evals

router = APIRouter(prefix="/evals")
RUN_TYPES = ("completions", "responses", "jsonl")


# --- evals ---

def _criterion(criterion: Any, index: int) -> dict:
    from openrft.service.graders import parse

    param = f"testing_criteria[{index}]"
    if not isinstance(criterion, dict):
        raise bad_request(f"Invalid value for '{param}': a testing criterion is a grader object.", param=param)
    parse(criterion, param=param)
    checked = dict(criterion)
    name = checked.get("name") or f"{checked.get('type')}-{index}"
    return {**checked, "name": name, "id": f"{name}-{uuid.uuid4()}"}


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
    if row is None:
        raise not_found("eval", eval_id, param="eval_id")
    return row["object"]


@router.post("")
def create_eval(request: Request, body: dict = Body(...)):
    for field in ("data_source_config", "testing_criteria"):
        if field not in body:
            raise APIError(400, f"Missing required parameter: '{field}'.", param=field,
                           code="missing_required_parameter")
    criteria = body["testing_criteria"]
    if not isinstance(criteria, list) or not criteria:
        raise bad_request("testing_criteria must be a non-empty list of graders.", param="testing_criteria")
    eval_id = f"eval_{uuid.uuid4().hex}"
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
               order_by: str = Query("created_at", pattern="^(created_at|updated_at)$")):
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
    from openrft.models import ModelError, resolve_model

    try:
        resolve_model(model, prepare=False)
    except ModelError as exc:
        raise APIError(400, f"The model `{model}` does not exist: {exc}", param="data_source.model",
                       code="model_not_found") from None


def get_run(store: Store, eval_id: str, run_id: str) -> dict:
    row = store.get(eval_runs, run_id)
    if row is None or row["eval_id"] != eval_id:
        raise not_found("eval run", run_id, param="run_id")
    return row


def run_object(store: Store, row: dict) -> dict:
    """The `eval.run` object: run.json of a finished run (with this API's ids), or the queued record."""
    request = row["request"]
    source = request["data_source"]
    base = {"object": "eval.run", "id": row["id"], "eval_id": row["eval_id"], "status": row["status"],
            "model": source.get("model") or "(given samples)", "name": request.get("name") or row["id"],
            "created_at": row["created_at"], "report_url": None,
            "result_counts": {"total": 0, "errored": 0, "failed": 0, "passed": 0}, "per_model_usage": None,
            "per_testing_criteria_results": None, "data_source": source,
            "metadata": request.get("metadata") or {}, "error": row["error"]}
    run_file = Path(row["run_dir"]) / "run.json"
    if row["status"] == "completed" and run_file.is_file():
        from openrft.evals import load_eval

        done = load_eval(Path(row["run_dir"])).run
        criteria_ids = {c["name"]: c["id"] for c in get_eval(store, row["eval_id"])["testing_criteria"]}
        results = [{**r, "testing_criteria": criteria_ids.get(r["testing_criteria"], r["testing_criteria"])}
                   for r in done.get("per_testing_criteria_results") or []]
        base.update({"result_counts": done.get("result_counts"), "per_model_usage": done.get("per_model_usage"),
                     "per_testing_criteria_results": results})
    return base


@router.post("/{eval_id}/runs")
def create_run(request: Request, eval_id: str, body: dict = Body(...)):
    store = store_of(request)
    get_eval(store, eval_id)
    source = _check_data_source(store, body.get("data_source"))
    run_id = f"evalrun_{uuid.uuid4().hex}"
    store.insert(eval_runs, id=run_id, eval_id=eval_id, run_dir=str(paths.evals_dir() / run_id),
                 request={"name": body.get("name"), "metadata": _metadata(body.get("metadata")),
                          "data_source": source},
                 status="queued", queue_order=time.time_ns(), attempts=0)
    return run_object(store, store.get(eval_runs, run_id))


@router.get("/{eval_id}/runs")
def list_runs(request: Request, eval_id: str, after: str | None = None, limit: int = Query(20),
              order: str = Query("asc", pattern="^(asc|desc)$"), status: str | None = None):
    store = store_of(request)
    get_eval(store, eval_id)
    where = [eval_runs.c.eval_id == eval_id] + ([eval_runs.c.status == status] if status else [])
    rows = store.rows(eval_runs, *where, newest_first=order == "desc")
    body = page(rows, after=after, limit=limit, extra_ids=True)
    body["data"] = [run_object(store, row) for row in body["data"]]
    return body


@router.get("/{eval_id}/runs/{run_id}")
def retrieve_run(request: Request, eval_id: str, run_id: str):
    store = store_of(request)
    return run_object(store, get_run(store, eval_id, run_id))


@router.post("/{eval_id}/runs/{run_id}")
def cancel_run(request: Request, eval_id: str, run_id: str):
    store = store_of(request)
    row = get_run(store, eval_id, run_id)
    if row["status"] in ("completed", "failed", "canceled"):
        raise bad_request(f"Eval run {run_id} is {row['status']}: it cannot be canceled.", param="run_id",
                          code="invalid_status")
    if not store.update(eval_runs, run_id, eval_runs.c.status == "queued", status="canceled", queue_order=None):
        store.update(eval_runs, run_id, requested_action="cancel")  # the worker drops the result when done
    return run_object(store, store.get(eval_runs, run_id))


@router.delete("/{eval_id}/runs/{run_id}")
def delete_run(request: Request, eval_id: str, run_id: str):
    store = store_of(request)
    row = get_run(store, eval_id, run_id)
    if row["status"] == "in_progress":
        raise bad_request(f"Eval run {run_id} is in progress: cancel it before deleting it.", param="run_id",
                          code="invalid_status")
    store.delete(eval_runs, run_id)
    return {"object": "eval.run.deleted", "deleted": True, "run_id": run_id}


def _output_items(store: Store, row: dict) -> list[dict]:
    if row["status"] != "completed" or not (Path(row["run_dir"]) / "run.json").is_file():
        return []
    from openrft.evals import load_eval

    items = load_eval(Path(row["run_dir"])).output_items
    return [{**item, "run_id": row["id"], "eval_id": row["eval_id"]} for item in items]


@router.get("/{eval_id}/runs/{run_id}/output_items")
def list_output_items(request: Request, eval_id: str, run_id: str, after: str | None = None,
                      limit: int = Query(20), status: str | None = Query(None, pattern="^(pass|fail)$"),
                      order: str = Query("asc", pattern="^(asc|desc)$")):
    store = store_of(request)
    items = _output_items(store, get_run(store, eval_id, run_id))
    if status:
        items = [item for item in items if item["status"] == status]
    if order == "desc":
        items.reverse()
    return page(items, after=after, limit=limit, extra_ids=True)


@router.get("/{eval_id}/runs/{run_id}/output_items/{item_id}")
def retrieve_output_item(request: Request, eval_id: str, run_id: str, item_id: str):
    store = store_of(request)
    for item in _output_items(store, get_run(store, eval_id, run_id)):
        if item["id"] == item_id:
            return item
    raise not_found("output item", item_id, param="output_item_id")


# --- execution (in a worker) ---

class GivenSamples:
    """An engine that answers with the samples a `jsonl` data source carries (nothing is generated)."""

    def __init__(self, samples: list[Sample]):
        self.model_name = "(given samples)"
        self._samples = list(samples)

    def generate(self, prompts, params: SamplingParams) -> list[list[Sample]]:
        batch, self._samples = self._samples[:len(prompts)], self._samples[len(prompts):]
        return [[sample] for sample in batch]


def _given_sample(index: int, sample: dict | None) -> Sample:
    sample = sample or {}
    text = sample.get("output_text")
    if text is None and sample.get("choices"):
        text = ((sample["choices"][0] or {}).get("message") or {}).get("content")
    output_json = sample.get("output_json")
    if output_json is None and text:
        try:
            output_json = json.loads(text)
        except ValueError:
            output_json = None
    return Sample(prompt_index=index, output_text=text or "", output_json=output_json, model=sample.get("model", ""))


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
        return messages
    if spec.get("type") == "item_reference":
        ref = str(spec.get("item_reference", "")).removeprefix("item.")
        messages = item.get(ref)
        if not isinstance(messages, list):
            raise ValueError(f"data source item {number}: item.{ref} is not a list of messages")
        return messages
    out = []
    for message in spec.get("template") or []:
        content = message.get("content")
        if isinstance(content, dict):  # {type: input_text, text}
            content = content.get("text", "")
        try:
            text = render(str(content), sample={}, item=item)
        except TemplateError as exc:
            raise ValueError(f"data source item {number}: input_messages: {exc}") from None
        out.append({"role": message.get("role", "user"), "content": text})
    return out


def _params(data_source: dict) -> SamplingParams:
    from openrft.service.chat import reasoning_effort_of

    given = data_source.get("sampling_params") or {}
    params = SamplingParams(temperature=given.get("temperature", 1.0), top_p=given.get("top_p", 1.0),
                            seed=given.get("seed", 42))
    if given.get("max_completion_tokens") or given.get("max_tokens"):
        params.max_tokens = int(given.get("max_completion_tokens") or given.get("max_tokens"))
    params.reasoning_effort = reasoning_effort_of(given.get("reasoning_effort"))
    response_format = given.get("response_format")
    text_format = (given.get("text") or {}).get("format")  # the Responses API's flattened json_schema
    if response_format is None and isinstance(text_format, dict) and text_format.get("type") == "json_schema":
        response_format = {"type": "json_schema", "json_schema": {k: v for k, v in text_format.items() if k != "type"}}
    params.response_format = response_format  # the engine checks it (text, json_object or json_schema)
    return params


def execute_run(store: Store, run_id: str, should_stop) -> str:
    """Run one queued eval run into its run directory; returns its final status."""
    from openrft.evals import run_eval
    from openrft.service.engine_cache import load_engine

    row = store.get(eval_runs, run_id)
    # The criteria as graders: the `id` the API gave each one is not part of the grader JSON.
    criteria = [{k: v for k, v in c.items() if k != "id"} for c in get_eval(store, row["eval_id"])["testing_criteria"]]
    data_source = row["request"]["data_source"]
    try:
        entries = _items(store, data_source["source"])
        if data_source["type"] == "jsonl":
            rows = [{**entry["item"], "messages": (entry["sample"] or {}).get("input") or entry["item"].get("messages")
                     or []} for entry in entries]
            engine = GivenSamples([_given_sample(i, entry["sample"]) for i, entry in enumerate(entries)])
            params = SamplingParams()
        else:
            rows = [{**entry["item"], "messages": _prompt(data_source, entry["item"], i + 1)}
                    for i, entry in enumerate(entries)]
            engine = load_engine(data_source["model"])
            params = _params(data_source)
    except (ValueError, APIError) as exc:
        store.update(eval_runs, run_id, error={"code": "invalid_data_source", "message": str(exc)})
        return "failed"
    run_eval(rows, engine=engine, grader=criteria, params=params, out_dir=Path(row["run_dir"]),
             name=row["request"].get("name") or run_id, eval_id=row["eval_id"], progress=False)
    return "canceled" if should_stop() == "cancel" else "completed"
