"""The dashboard web page: one static HTML page and the JSON endpoints it polls.

`router` is a FastAPI `APIRouter` with no prefix of its own; `openrft serve` mounts it with
`app.include_router(router, prefix="/dashboard")` and it then reads `$OPENRFT_HOME/runs` and
`$OPENRFT_HOME/evals`. `create_app(run_dirs)` is the standalone app of `openrft dashboard RUN_DIR…`,
which reads the given folders instead (`app.state.dashboard_roots`). The page uses relative URLs only,
so it works under any prefix, and it loads nothing from the network (Chart.js is vendored in `static/`).

Endpoints (relative to the mount point):

- `GET /` the page; `GET /static/<file>` its script, style and Chart.js;
- `GET /api/runs` jobs and eval runs with status, model, task, best validation reward;
- `GET /api/job/<key>` a job's per-step series, checkpoints and validation runs;
- `GET /api/eval/<key>` an eval run's variance study, histogram, precision/recall, headline figures;
- `GET /api/items/<key>?offset=&limit=&status=&order=&q=` a page of its output items;
- `GET /api/compare?key=…&key=…` eval runs side by side;
- `GET /api/playground/<key>` a job's models, validation items, response_format and grader;
- `POST /api/playground/<key>` one answer of one of those models, graded by the job's grader
  (`openrft.dashboard.playground`). The engines come from `app.state.engines` (the API server's cache,
  so `openrft serve --upstream` applies), or a cache of this app's own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from fastapi import APIRouter, Body, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, RedirectResponse

from openrft import paths
from openrft.dashboard import rundata

STATIC_DIR = Path(__file__).resolve().parent / "static"
MEDIA_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
               ".css": "text/css; charset=utf-8", ".md": "text/plain; charset=utf-8"}

router = APIRouter(tags=["dashboard"])


def roots(request: Request) -> list[Path]:
    """The folders this app reads: those given to `create_app`, else the jobs and eval runs of OPENRFT_HOME."""
    given = getattr(request.app.state, "dashboard_roots", None)
    return list(given) if given else [paths.runs_dir(), paths.evals_dir()]


def find(request: Request, key: str, kind: str) -> rundata.RunRef:
    ref = rundata.discover(roots(request)).get(key)
    if ref is None or ref.kind != kind:
        raise HTTPException(404, f"no {kind} run {key!r} in {', '.join(str(r) for r in roots(request))}")
    return ref


def readable(function, *args, **kwargs):
    """Call a reader; a broken run directory becomes a 422 naming the file, line and reason."""
    try:
        return function(*args, **kwargs)
    except rundata.RunDirError as exc:
        raise HTTPException(422, str(exc)) from None


@router.get("", include_in_schema=False)
def page_without_slash(request: Request):
    return RedirectResponse(str(request.url.path) + "/")


@router.get("/", include_in_schema=False)
def page():
    return FileResponse(STATIC_DIR / "index.html", media_type=MEDIA_TYPES[".html"],
                        headers={"Cache-Control": "no-cache"})


@router.get("/static/{name}", include_in_schema=False)
def static(name: str):
    path = STATIC_DIR / name
    if "/" in name or name.startswith(".") or not path.is_file():
        raise HTTPException(404, f"no static file {name!r}")
    return FileResponse(path, media_type=MEDIA_TYPES.get(path.suffix, "application/octet-stream"))


@router.get("/api/runs")
def runs(request: Request) -> dict:
    return rundata.list_runs(rundata.discover(roots(request)))


@router.get("/api/job/{key:path}")
def job(request: Request, key: str) -> dict:
    return readable(rundata.job_view, find(request, key, "job"))


@router.get("/api/eval/{key:path}")
def eval_run(request: Request, key: str) -> dict:
    return readable(rundata.eval_view, find(request, key, "eval"))


@router.get("/api/items/{key:path}")
def items(request: Request, key: str, offset: int = Query(0, ge=0), limit: int = Query(20, ge=1, le=500),
          status: str | None = None, order: str = "item", q: str | None = None) -> dict:
    return readable(rundata.output_items, find(request, key, "eval"), offset=offset, limit=limit,
                    status=status or None, order=order, query=q or None)


@router.get("/api/compare")
def compare(request: Request, key: list[str] = Query(default=[])) -> dict:
    if not key:
        raise HTTPException(422, "name the eval runs to compare: /api/compare?key=A&key=B")
    return readable(rundata.compare, [find(request, k, "eval") for k in key])


@router.get("/api/playground/{key:path}")
def playground(request: Request, key: str) -> dict:
    from openrft.dashboard.playground import playground_view

    return readable(playground_view, find(request, key, "job"))


@router.post("/api/playground/{key:path}")
def playground_answer(request: Request, key: str, body: dict = Body(...)) -> dict:
    from openrft.dashboard.playground import PlaygroundError, answer
    from openrft.engines import EngineError
    from openrft.models import ModelError

    ref = find(request, key, "job")
    try:
        return readable(answer, ref, engines(request), body)
    except (PlaygroundError, ValueError, TypeError) as exc:
        raise HTTPException(422, str(exc)) from None
    except (ModelError, EngineError) as exc:
        raise HTTPException(502, f"the model could not answer: {exc}") from None


def engines(request: Request):
    """The app's engine cache (the API server's), made on first use for the standalone dashboard."""
    cache = getattr(request.app.state, "engines", None)
    if cache is None:
        from openrft.service.engine_cache import EngineCache

        cache = request.app.state.engines = EngineCache()
    return cache


def create_app(run_dirs: Iterable[str | Path] = ()) -> FastAPI:
    """A standalone app serving the dashboard at `/dashboard/` for `run_dirs` (default: OPENRFT_HOME's runs)."""
    app = FastAPI(title="openrft dashboard", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.dashboard_roots = [Path(p).expanduser().resolve() for p in run_dirs]
    from openrft.service.engine_cache import EngineCache

    app.state.engines = EngineCache()  # the playground's models, loaded on first use
    app.include_router(router, prefix="/dashboard")

    @app.get("/", include_in_schema=False)
    def home():
        return RedirectResponse("/dashboard/")

    return app
