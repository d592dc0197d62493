"""OpenAI's error object, `{"error": {"message", "type", "param", "code"}}`, for every failure.

Routes raise `APIError`; `install(app)` turns it, FastAPI's request validation errors, unknown routes
and unexpected exceptions into that object with the right HTTP status, so that the `openai` SDK raises
its usual `BadRequestError`, `AuthenticationError`, `NotFoundError`... on the client side.

Every response carries an `x-request-id` header (`req_…`, as OpenAI's). A 500 that would fail the same
way again (an engine refusing the request, a bug) carries `x-should-retry: false`, so that the SDK does
not retry it; a 500 from a database that is busy or unreachable carries `x-should-retry: true`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from openrft.errors import OpenRFTError

log = logging.getLogger("openrft.service")


class APIError(OpenRFTError):
    """An error answered to the client as OpenAI's error object."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None,
                 type: str = "invalid_request_error", extra: dict[str, Any] | None = None,
                 retry: bool | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.type = type
        self.extra = extra or {}
        # False: the same request fails the same way again (sent as `x-should-retry: false`); None: say nothing.
        self.retry = (False if status >= 500 else None) if retry is None else retry

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code,
                          **self.extra}}

    def response(self) -> JSONResponse:
        headers = {"x-should-retry": "true" if self.retry else "false"} if self.retry is not None else None
        return JSONResponse(self.body(), status_code=self.status, headers=headers)


def snake_case(text: str) -> str:
    """An error code from words: "fine-tuning job" -> "fine_tuning_job"."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def not_found(kind: str, object_id: str, param: str | None = None) -> APIError:
    return APIError(404, f"No {kind} found with id '{object_id}'.", param=param,
                    code=f"{snake_case(kind)}_not_found")


def bad_request(message: str, param: str | None = None, code: str | None = "invalid_value") -> APIError:
    return APIError(400, message, param=param, code=code)


def unauthorized(message: str) -> APIError:
    return APIError(401, message, code="invalid_api_key")


def _validation_error(exc: RequestValidationError) -> APIError:
    """The first problem of a request body or query, naming its parameter as OpenAI does."""
    problems = exc.errors()
    first = problems[0] if problems else {"loc": (), "msg": "invalid request", "type": ""}
    loc = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path", "form")]
    param = ".".join(loc) or None
    if first.get("type") == "missing":
        return APIError(400, f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter")
    if first.get("type") == "json_invalid":
        return APIError(400, "We could not parse the JSON body of your request. The body must be valid JSON.",
                        code="invalid_json")
    return APIError(400, f"Invalid value for '{param}': {first.get('msg')}.", param=param, code="invalid_value")


def install(app: FastAPI) -> None:
    """Answer every error of `app` with OpenAI's error object."""

    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError):  # noqa: ARG001 (exception-handler signature)
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):  # noqa: ARG001 (exception-handler signature)
        return _validation_error(exc).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 404:
            return APIError(404, f"Invalid URL ({request.method} {request.url.path})", code="unknown_url").response()
        if exc.status_code == 405:
            return APIError(405, f"Method {request.method} is not allowed on {request.url.path}.",
                            code="method_not_allowed").response()
        return APIError(exc.status_code, str(exc.detail)).response()

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception):
        from sqlalchemy.exc import OperationalError

        log.exception("unhandled error on %s %s", request.method, request.url.path)
        transient = isinstance(exc, OperationalError)  # a locked or unreachable database: worth a retry
        return APIError(500, f"The server had an error while processing your request: {type(exc).__name__}: {exc}",
                        type="server_error", code="database_error" if transient else "internal_error",
                        retry=transient).response()


def install_request_id(app: FastAPI) -> None:
    """An `x-request-id` on every response, errors included; install it last, so that it wraps the others."""
    from openrft import ids

    # `_crash` of `install`, a coroutine function
    crash = cast("Callable[[Request, Exception], Awaitable[Response]]", app.exception_handlers[Exception])

    @app.middleware("http")
    async def request_id(request: Request, call_next):
        rid = ids.request_id()
        try:
            response = await call_next(request)
        except Exception as exc:  # noqa: BLE001 - answered as the crash handler answers it, with the header
            response = await crash(request, exc)
        response.headers["x-request-id"] = rid
        return response
