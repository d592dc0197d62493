"""The run directory's two file primitives: one atomic writer and one tolerant reader.

Writing: a JSON file is written to `<name>.tmp`, fsynced and renamed over `<name>` (a reader sees the old
file or the new one, never half of one); a JSONL line is appended and fsynced (`append_jsonl`).

Reading: a missing file is `None` (JSON) or no rows (JSONL); a JSONL file's last line that has no newline
yet is skipped (its writer is still on it, or died mid-write); anything else that is not a JSON object is a
`RunFileError` naming the file, the line and the reason.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from openrft.errors import InputError


class RunFileError(InputError, ValueError):
    """A run-directory file that cannot be read: names the file, the line when there is one, and the reason."""


def write_json(path: Path, data: Any) -> None:
    """Write `data` as indented JSON to `path` atomically: `.tmp`, fsync, rename."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        f.write(json.dumps(data, indent=2, default=plain))
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


def write_jsonl(path: Path, rows: list[Any]) -> None:
    """Replace `path` with one JSON line per row, atomically (`.tmp`, fsync, rename)."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        f.write("".join(json.dumps(row, default=plain) + "\n" for row in rows))
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


def append_jsonl(path: Path, row: Any) -> None:
    """Append one JSON line to `path` and fsync it. A torn last line (its writer died before the newline) is cut
    off first, so that a line appended after a crash never joins it: only the last line of a file can be torn."""
    _cut_torn_tail(path)
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(row, default=plain) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _cut_torn_tail(path: Path) -> None:
    if not path.is_file() or path.stat().st_size == 0:
        return
    with path.open("rb+") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) == b"\n":
            return
        f.seek(0)
        f.truncate(f.read().rfind(b"\n") + 1)  # rfind is -1 when the only line is torn: the file is emptied


def read_json(path: Path) -> dict | None:
    """The JSON object in `path`; None when the file is absent."""
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RunFileError(f"{path}: line {exc.lineno}: not valid JSON ({exc.msg})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RunFileError(f"{path}: cannot read: {exc}") from None
    if not isinstance(value, dict):
        raise RunFileError(f"{path}: expected a JSON object, got {type(value).__name__}")
    return value


def read_jsonl(path: Path) -> list[dict]:
    """The JSON objects of a JSONL file, oldest first; a last line still being written is skipped.

    The rows are cached by the file's mtime and size and shared between calls: copy one before changing it."""
    if not path.is_file():
        return []
    stat = path.stat()
    return list(_read_jsonl_cached(str(path), stat.st_mtime_ns, stat.st_size))


@lru_cache(maxsize=64)
def _read_jsonl_cached(path: str, mtime_ns: int, size: int) -> tuple[dict, ...]:  # noqa: ARG001 (cache keys)
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    lines = text.split("\n")
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            if number == len(lines):  # no newline after it yet: the writer is still on it (or died on it)
                continue
            raise RunFileError(f"{path}: line {number}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise RunFileError(f"{path}: line {number}: expected a JSON object, got {type(row).__name__}")
        rows.append(row)
    return tuple(rows)


def problems(exc: ValidationError) -> str:
    """A file's validation errors as `field.path: reason`, the first five."""
    return "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()[:5])


def plain(value: Any) -> Any:
    """JSON for what json.dumps does not know: a numpy or torch scalar as its number, anything else as text."""
    if hasattr(value, "item"):
        return value.item()
    return str(value)
