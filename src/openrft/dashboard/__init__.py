"""The dashboard and the static reports: see training as it happens, and keep the curves afterwards.

- `web.py`: the web page (a FastAPI router, mounted at `/dashboard` by `openrft serve`, and a standalone
  app for `openrft dashboard RUN_DIR…`), drawn with Chart.js (vendored in `static/`), polling while a run runs;
- `report.py`: `build_report(run_dir)` writes the same charts as PNG files plus one self-contained HTML file
  (`report_finished_job` after a job succeeds: the trainer itself does not import the dashboard);
- `rundata.py`: reads run directories into the series both of them draw.

Importing this package is cheap: FastAPI and matplotlib load only when a page or a report is made.
"""

from __future__ import annotations

from pathlib import Path


def build_report(run_dir: str | Path, out_dir: str | Path | None = None) -> Path:
    """Write `run_dir/report/` (PNG charts + `report.html`) for a job or an eval run; returns the HTML file."""
    from openrft.dashboard.report import build_report as build

    return build(run_dir, out_dir)


def report_finished_job(run_dir: str | Path, status: str) -> Path | None:
    """The report of a job that just succeeded, written by whoever ran it (`openrft train`, the torchrun worker,
    the service's worker, the demos), and its path or the reason it failed logged as a job event. Never raises:
    a report is a convenience and never fails a finished job."""
    if status != "succeeded":
        return None
    from openrft.runs import EventLog

    log = EventLog(Path(run_dir))
    try:
        path = build_report(run_dir)
    except Exception as exc:
        log.emit(f"Report could not be written: {exc}", level="warn")
        return None
    log.emit(f"Report written: {path}")
    return path


__all__ = ["build_report", "report_finished_job"]
