"""The job's event log: `events.jsonl`, one `fine_tuning.job.event` per line, appended and fsynced.

The same file is read by the API's /events route, the dashboard and `openrft report`.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from openrft import ids


class EventLog:
    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / "events.jsonl"

    def emit(self, message: str, *, level: str = "info", type: str = "message", data: dict | None = None) -> dict:
        event = {"object": "fine_tuning.job.event", "id": ids.event_id(),
                 "created_at": int(time.time()), "level": level, "message": message, "type": type,
                 "data": data}
        with self.path.open("a") as f:
            f.write(json.dumps(event, default=_plain) + "\n")
            f.flush()
            os.fsync(f.fileno())
        return event

    def read(self) -> list[dict]:
        return read_events(self.path.parent)

    def truncate_after_step(self, step: int) -> int:
        """Drop metrics events past `step` (work lost by a crash and redone on resume); returns how many."""
        events = self.read()
        kept = [e for e in events if not (e.get("type") == "metrics" and (e.get("data") or {}).get("step", 0) > step)]
        tmp = self.path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(json.dumps(e, default=_plain) + "\n" for e in kept))
        tmp.replace(self.path)
        return len(events) - len(kept)


def read_events(run_dir: str | Path) -> list[dict]:
    """All events of a run, oldest first; a torn last line (a crash mid-write) is ignored."""
    path = Path(run_dir) / "events.jsonl"
    if not path.exists():
        return []
    events = []
    for line in path.read_text().splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return events


def _plain(value):
    if hasattr(value, "item"):
        return value.item()
    return str(value)
