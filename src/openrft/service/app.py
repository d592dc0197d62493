"""The FastAPI app: OpenAI's routes under /v1, Bearer auth, OpenAI error objects.

`create_app(store, api_key=...)` is all a server needs; `openrft serve` builds one with the store of the
data directory and runs it under uvicorn, beside the worker processes that run the queued work.
"""

from __future__ import annotations

import hmac

from fastapi import FastAPI, Request

from openrft import __version__
from openrft.service import errors
from openrft.service.store import Store


def create_app(store: Store | None = None, *, api_key: str | None = None, migrate: bool = True) -> FastAPI:
    """An app serving `store` (the data directory's by default); with `api_key`, every route needs it."""
    from openrft.service import chat, evals, files, graders, jobs, responses
    from openrft.service.engine_cache import EngineCache

    store = store or Store()
    if migrate:
        store.migrate()
    app = FastAPI(title="openrft", version=__version__,
                  description="OpenAI-compatible reinforcement fine-tuning, evals and chat on open-weight models.")
    app.state.store = store
    app.state.engines = EngineCache()
    errors.install(app)
    if api_key:
        _require_key(app, api_key)
    for module in (files, jobs, graders, evals, chat, responses):
        app.include_router(module.router, prefix="/v1")
    app.include_router(jobs.permissions, prefix="/v1")
    from openrft.dashboard.web import router as dashboard

    app.include_router(dashboard, prefix="/dashboard")  # the same page as `openrft dashboard`, over this data dir
    errors.install_request_id(app)  # last: the outermost middleware, so that 401s carry the header too
    return app


def _require_key(app: FastAPI, api_key: str) -> None:
    expected = api_key.encode()

    @app.middleware("http")
    async def check_key(request: Request, call_next):
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if not header:
            return errors.unauthorized(
                "You didn't provide an API key. You need to provide your API key in an Authorization header "
                "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).").response()
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
            shown = given.strip()[-4:] if len(given.strip()) > 4 else ""
            return errors.unauthorized(f"Incorrect API key provided: ...{shown}.").response()
        return await call_next(request)


def store_of(request: Request) -> Store:
    return request.app.state.store
