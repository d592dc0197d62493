"""`events.jsonl`: one `fine_tuning.job.event` per line, appended and fsynced; read by the API's /events
route, the dashboard, `openrft report`, the demo and resume."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from openrft import ids
from openrft.runs.files import RunFileError, append_jsonl, read_jsonl, write_jsonl
from openrft.runs.models import MetricsData

EVENTS_FILE = "events.jsonl"


class EventLog:
    """The writer of a run's events."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / EVENTS_FILE

    def emit(self, message: str, *, level: str = "info", type: str = "message",
             data: MetricsData | dict | None = None) -> dict:
        if isinstance(data, MetricsData):
            data = data.to_dict()
        event = {"object": "fine_tuning.job.event", "id": ids.event_id(),
                 "created_at": int(time.time()), "level": level, "message": message, "type": type, "data": data}
        append_jsonl(self.path, event)
        return event

    def read(self) -> list[dict]:
        return read_events(self.path.parent)

    def truncate_after_step(self, step: int) -> int:
        """Drop metrics events past `step` (work lost by a crash and redone on resume); returns how many."""
        events = self.read()
        kept = [e for e in events if not (e.get("type") == "metrics" and (e.get("data") or {}).get("step", 0) > step)]
        write_jsonl(self.path, kept)
        return len(events) - len(kept)


def read_events(run_dir: str | Path) -> list[dict]:
    """All events of a run, oldest first (a last line still being written is skipped)."""
    return read_jsonl(Path(run_dir) / EVENTS_FILE)


def metrics_steps(events: list[dict], *, source: str = EVENTS_FILE) -> list[MetricsData]:
    """The typed `data` of each metrics event, one per step by step number (a step written twice, e.g. after
    a resume, keeps the last)."""
    by_step: dict[int, MetricsData] = {}
    for event in events:
        data = event.get("data")
        if event.get("type") == "metrics" and isinstance(data, dict) and isinstance(data.get("step"), int):
            try:
                by_step[data["step"]] = MetricsData.model_validate(data)
            except ValidationError as exc:
                field = ".".join(str(p) for p in exc.errors()[0]["loc"])
                raise RunFileError(f"{source}: event {event.get('id')}: data.{field}: "
                                   f"{exc.errors()[0]['msg']}") from None
    return [by_step[step] for step in sorted(by_step)]


def read_metrics(run_dir: str | Path) -> list[MetricsData]:
    """The run's metrics, one per step."""
    return metrics_steps(read_events(run_dir), source=str(Path(run_dir) / EVENTS_FILE))


def plain_data(data: Any) -> Any:
    """An event's `data` as JSON (a MetricsData dumped)."""
    return data.to_dict() if isinstance(data, MetricsData) else data
