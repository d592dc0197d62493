"""Ready-made graders shipped as OpenAI grader JSON (package data in `ready/*.json`).

`ready_grader("multilabel_f1")` returns the grader dict, ready for `build_grader`, a job file or
OpenAI's API unchanged:

- `multilabel_f1`: a multi grader whose reward is F1 of the predicted label set
  (`sample["output_json"]["labels"]`, or labels listed in the answer text) against `item["labels"]`,
  with `precision` and `recall` as sub-rewards.
- `multilabel_fbeta`: the same with F-beta, beta = 2 (recall weighs more).
- `gsm8k_numeric`: a python grader for GSM8K-style numeric answers against `item["answer"]` (`#### 42`).
"""

from __future__ import annotations

import json
from pathlib import Path

READY_DIR = Path(__file__).resolve().parent / "ready"


def ready_names() -> list[str]:
    """The names of the ready-made graders."""
    return sorted(path.stem for path in READY_DIR.glob("*.json"))


def ready_grader(name: str) -> dict:
    """A fresh copy of the ready-made grader `name` as grader JSON (a dict)."""
    path = READY_DIR / f"{name}.json"
    if not path.is_file():
        raise KeyError(f"no ready-made grader {name!r} (available: {', '.join(ready_names())})")
    return json.loads(path.read_text())
