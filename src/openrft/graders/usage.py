"""The token usage of model graders (score_model, label_model), summed from the grades they return.

A model grader's Grade carries `token_usage` ({judge model: {prompt_tokens, completion_tokens, ...}}); a multi
grade carries the sum of its sub-grades'. From a list of grades:

- `model_usage` totals each judge model's tokens and calls (eval runs list them in `per_model_usage`);
- `grader_usage_entries` gives one entry per grader and sub-grader in the shape of OpenAI's RFT metrics
  (`usage.graders[]`: `{name, type, model, <split>_prompt_tokens_mean, <split>_prompt_tokens_count,
  <split>_completion_tokens_mean, <split>_completion_tokens_count}`, mean per graded sample, count over the
  split). A grader without a model used no tokens (0). A multi grade keeps only the sum over its sub-graders,
  so a model sub-grader's own tokens are known only when no other sub-grader uses the same judge model;
  otherwise they are null.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

TOKEN_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens")


def model_usage(grades: Iterable[Any]) -> dict[str, dict[str, int]]:
    """{judge model: {prompt_tokens, completion_tokens, total_tokens, cached_tokens, calls}} over `grades`."""
    totals: dict[str, dict[str, int]] = {}
    for grade in grades:
        for model, usage in (getattr(grade, "token_usage", None) or {}).items():
            entry = totals.setdefault(model, {key: 0 for key in (*TOKEN_KEYS, "calls")})
            for key in TOKEN_KEYS:
                entry[key] += int(usage.get(key) or 0)
            entry["calls"] += 1
    return totals


def grader_usage_entries(grader: dict, splits: dict[str, dict | None]) -> list[dict]:
    """One `usage.graders[]` entry per grader and sub-grader of `grader` (a grader dict).

    `splits` maps "train" / "valid" to `{"samples": graded samples, "models": model_usage(...)}` of that split,
    or to None when the split's usage is not known (its fields are then null).
    """
    subs = list((grader.get("graders") or {}).values()) if grader.get("type") == "multi" else []
    model_of_subs = [g.get("model") for g in subs if g.get("model")]
    entries = []
    for g in [grader] + subs:
        entry: dict[str, Any] = {"name": g.get("name"), "type": g.get("type"), "model": g.get("model")}
        for split, usage in splits.items():
            tokens = _tokens(g, g is grader, usage, model_of_subs)
            for kind in ("prompt", "completion"):
                count = None if tokens is None else tokens[f"{kind}_tokens"]
                samples = (usage or {}).get("samples") or 0
                entry[f"{split}_{kind}_tokens_count"] = count
                entry[f"{split}_{kind}_tokens_mean"] = None if count is None else count / max(1, samples)
        entries.append(entry)
    return entries


def _tokens(g: dict, top: bool, usage: dict | None, model_of_subs: list[str]) -> dict | None:
    if usage is None:
        return None
    models = usage.get("models") or {}
    if top:  # the grade of the top grader holds every judge call
        return {key: sum(m.get(key, 0) for m in models.values()) for key in ("prompt_tokens", "completion_tokens")}
    if not g.get("model"):
        return {"prompt_tokens": 0, "completion_tokens": 0}
    if model_of_subs.count(g["model"]) > 1:
        return None  # two sub-graders share the judge: the grades do not say which used what
    found = models.get(g["model"]) or {}
    return {key: int(found.get(key, 0)) for key in ("prompt_tokens", "completion_tokens")}
