"""The run and validate endpoints' logic (spec §3.10), shared by `openrft grade` and the HTTP service.

`run_grader({"grader", "model_sample", "item"})` returns OpenAI's run-grader response;
`validate_grader({"grader"})` returns `{"grader": <the grader>}`. A bad request raises
GraderValidationError whose fields are named from the request's root (`grader.operation`,
`model_sample`), which the service turns into HTTP 400.
"""

from __future__ import annotations

import json
from typing import Any

from openrft.graders.build import build_grader
from openrft.graders.spec import GraderValidationError, parse_grader


def sample_from_text(text: str) -> dict[str, Any]:
    """The `sample` namespace for a plain model answer: output_json is filled when the text is JSON."""
    try:
        output_json = json.loads(text)
    except ValueError:
        output_json = None
    return {"output_text": text, "output_json": output_json, "output_tools": [],
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}]}


def _request(request: Any, keys: tuple[str, ...]) -> dict:
    if not isinstance(request, dict):
        raise GraderValidationError([("", f"the request must be a JSON object, got {type(request).__name__}")])
    unknown = sorted(set(request) - set(keys))
    if unknown:
        raise GraderValidationError([(key, "unknown field") for key in unknown])
    if "grader" not in request:
        raise GraderValidationError([("grader", "required field is missing")])
    return request


def _parse(grader: Any):
    try:
        return parse_grader(grader)
    except GraderValidationError as exc:
        raise GraderValidationError([(f"grader.{field}" if field else "grader", reason)
                                     for field, reason in exc.problems]) from None


def validate_grader(request: Any) -> dict[str, Any]:
    """POST /v1/fine_tuning/alpha/graders/validate: `{"grader": ...}` -> `{"grader": <validated grader>}`."""
    request = _request(request, ("grader",))
    _parse(request["grader"])
    return {"grader": request["grader"]}


def run_grader(request: Any, *, judge_engine_factory=None, sandbox=None) -> dict[str, Any]:
    """POST /v1/fine_tuning/alpha/graders/run: grade `model_sample` against `item` with `grader`.

    `model_sample` is the model's answer as a string (OpenAI). As an openrft extension it may also be
    a whole sample object (`output_text`, `output_json`, `output_tools`, `choices`), which is the only
    way to grade tool calls here. `reference_answer` (the pre-1.83 SDK's name) becomes
    `item.reference_answer`.
    """
    request = _request(request, ("grader", "model_sample", "item", "reference_answer"))
    spec = _parse(request["grader"])
    model_sample = request.get("model_sample")
    if isinstance(model_sample, str):
        sample = sample_from_text(model_sample)
    elif isinstance(model_sample, dict) and isinstance(model_sample.get("output_text", ""), str):
        sample = {**sample_from_text(model_sample.get("output_text", "")), **model_sample}
    else:
        raise GraderValidationError([("model_sample", "required: the model's answer as a string")])
    item = request.get("item")
    if item is None:
        item = {}
    if not isinstance(item, dict):
        raise GraderValidationError([("item", f"must be a JSON object, got {type(item).__name__}")])
    if "reference_answer" in request:
        item = {**item, "reference_answer": request["reference_answer"]}
    grader = build_grader(spec, judge_engine_factory=judge_engine_factory, sandbox=sandbox)
    return grader.grade(sample, item).to_run_response()
