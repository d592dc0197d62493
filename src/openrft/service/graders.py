"""`/v1/fine_tuning/alpha/graders/validate` and `/run`: `openrft.graders.validate_grader` / `run_grader` over HTTP.

The graders package owns the endpoints' logic (shared with `openrft grade`); this module only turns its
GraderValidationError into OpenAI's 400 naming the field (`grader.operation`, `model_sample`, ...).
"""

from __future__ import annotations

from fastapi import APIRouter, Body
from fastapi.concurrency import run_in_threadpool

from openrft.service.errors import APIError

router = APIRouter(prefix="/fine_tuning/alpha/graders")


def grader_error(exc, prefix: str = "") -> APIError:
    """A GraderValidationError as a 400 naming its first field (under `prefix`, e.g. `testing_criteria[0]`)."""
    field = exc.field or ""
    param = ".".join(part for part in (prefix, field) if part) or None
    missing = exc.problems[0][1].startswith("required")  # "required field is missing", "required: ..."
    message = f"Missing required parameter: '{param}'." if missing else f"Invalid grader: {exc}"
    return APIError(400, message, param=param, code="missing_required_parameter" if missing else "invalid_grader")


def parse(grader: dict, param: str = "grader"):
    """The validated grader spec, or a 400 naming the field of the grader that is wrong."""
    from openrft.graders import GraderValidationError, parse_grader

    try:
        return parse_grader(grader)
    except GraderValidationError as exc:
        raise grader_error(exc, param) from None


@router.post("/validate")
def validate(body: dict = Body(...)):
    from openrft.graders import GraderValidationError, validate_grader

    try:
        return validate_grader(body)
    except GraderValidationError as exc:
        raise grader_error(exc) from None


def _run(body: dict) -> dict:
    from openrft.graders import GraderValidationError, run_grader

    try:
        return run_grader(body)
    except GraderValidationError as exc:
        raise grader_error(exc) from None


@router.post("/run")
async def run(body: dict = Body(...)):
    return await run_in_threadpool(_run, body)
