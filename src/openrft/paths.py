"""Where openrft keeps things: one data directory for caches, runs and the store.

`OPENRFT_HOME` names it (default `~/.openrft`). The real labelled data used by examples and tests
lives outside the repository, in `$OPENRFT_DATA_DIR` or `../shared/data` beside the checkout.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def home() -> Path:
    """The data directory (created on first use)."""
    path = Path(os.environ.get("OPENRFT_HOME") or Path.home() / ".openrft").expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def models_dir() -> Path:
    return _sub("models")


def runs_dir() -> Path:
    return _sub("runs")


def evals_dir() -> Path:
    return _sub("evals")


def files_dir() -> Path:
    return _sub("files")


def _sub(name: str) -> Path:
    path = home() / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def shared_data_dir() -> Path | None:
    """The real-data folder (`$OPENRFT_DATA_DIR`, else `../shared/data` beside the checkout), or None."""
    env = os.environ.get("OPENRFT_DATA_DIR")
    candidates = [Path(env)] if env else [REPO_ROOT.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"]
    for path in candidates:
        if path.is_dir():
            return path
    return None
