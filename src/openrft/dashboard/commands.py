"""`openrft dashboard RUN_DIR…` (the web page over some run directories) and `openrft report RUN_DIR`.

Registered at the bottom of `cli.py`; FastAPI, uvicorn and matplotlib load only when
a command runs, so `openrft --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from openrft.errors import InputError

console = Console()


def dashboard(
    run_dirs: Optional[list[Path]] = typer.Argument(
        None, help="job or eval run directories, or folders of them (default: $OPENRFT_HOME/runs and /evals)"),
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(8765, help="port to listen on"),
):
    """Serve the dashboard for some run directories (live while a job runs), without the API service."""
    import uvicorn

    from openrft import paths
    from openrft.dashboard import rundata
    from openrft.dashboard.web import create_app

    roots = list(run_dirs or [])
    for root in roots:
        if not root.exists():
            raise InputError(f"{root}: no such directory")
    found = rundata.discover(roots or [paths.runs_dir(), paths.evals_dir()])
    jobs = sum(1 for ref in found.values() if ref.kind == "job")
    console.print(f"openrft dashboard: {jobs} job(s), {len(found) - jobs} eval run(s) "
                  f"at [bold]http://{host}:{port}/dashboard/[/] (Ctrl-C stops)")
    uvicorn.run(create_app(roots), host=host, port=port, log_level="warning")


def report(
    run_dir: Path = typer.Argument(..., help="a job or eval run directory"),
    out: Optional[Path] = typer.Option(None, help="output folder (default RUN_DIR/report)"),
):
    """Write a run's charts as PNG files and one self-contained HTML file."""
    from openrft.dashboard import build_report

    if not run_dir.is_dir():
        raise InputError(f"{run_dir}: no such directory")
    with console.status(f"drawing the charts of {run_dir}"):
        page = build_report(run_dir, out)
    pngs = sorted(page.parent.glob("*.png"))
    console.print(f"report: [bold]{page}[/] ({len(pngs)} charts: {', '.join(p.name for p in pngs)})")

