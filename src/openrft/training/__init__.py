"""The trainer: the resolved hyperparameters; grader-driven policy optimization (RFT, loop.py), supervised
and DPO fine-tuning (offline.py, sft.py, dpo.py); checkpoints and resume. The job body they run is
`openrft.spec`'s.

The names below are imported on first use, so that a light module of the package (hyperparams, guards) loads
without the trainer and torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_NAMES = {"create_job": "openrft.training.job",
          "load_job": "openrft.training.job", "run_job": "openrft.training.loop",
          "list_checkpoints": "openrft.training.job", "read_events": "openrft.training.job"}

__all__ = ["create_job", "list_checkpoints", "load_job", "read_events", "run_job"]


def __getattr__(name: str) -> Any:
    if name not in _NAMES:
        raise AttributeError(f"module 'openrft.training' has no attribute {name!r}")
    return getattr(importlib.import_module(_NAMES[name]), name)
