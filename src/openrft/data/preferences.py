"""DPO pairs from your own grader: an eval run's graded samples turned into OpenAI preference rows.

An eval run (`openrft eval --runs N`, or a training job's `evals/step-N`) holds several graded samples per item
(`output_items.jsonl`). For each item the best-graded sample becomes `preferred_output` and the worst-graded
one `non_preferred_output`; an item whose samples all score the same (a tie: nothing to prefer) or that has
only one sample is skipped. A sample's grade is its criteria's mean score; samples that errored (the engine
failed) are left out. The prompt is the sample's input messages; the item's reference fields are kept beside
the pair (training ignores them; a group key such as `celex_id` still splits by group).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from openrft.errors import InputError
from openrft.runs import OutputItem, RunFileError, read_output_items
from openrft.runs.evals import OUTPUT_ITEMS


class PreferenceError(InputError, ValueError):
    """An eval run that cannot be read; the message names the file."""


def _grade(item: OutputItem) -> float | None:
    scores = [r.score for r in item.results]
    return sum(scores) / len(scores) if scores else None


def preference_rows(eval_run: str | Path, *, min_gap: float = 0.0) -> tuple[list[dict], dict]:
    """(DPO rows, a summary: items, pairs, ties, single, mean_gap) from the eval run directory `eval_run`."""
    if not (Path(eval_run) / OUTPUT_ITEMS).is_file():
        raise PreferenceError(f"{eval_run}: not an eval run directory (no {OUTPUT_ITEMS})")
    try:
        items = read_output_items(eval_run)
    except RunFileError as exc:
        raise PreferenceError(str(exc)) from None
    by_item: dict[int, list[OutputItem]] = defaultdict(list)
    for item in items:
        if item.status != "error" and _grade(item) is not None:
            by_item[item.datasource_item_id].append(item)
    rows, gaps = [], []
    ties = single = 0
    for key in sorted(by_item):
        samples = by_item[key]
        if len(samples) < 2:
            single += 1
            continue
        graded = [(float(_grade(s) or 0.0), s) for s in samples]  # every grade is known (filtered above)
        ranked = sorted(graded, key=lambda pair: pair[0])  # stable: among equal grades the earlier sample is kept
        (low, worst), (high, best) = ranked[0], ranked[-1]
        gap = high - low
        if gap <= min_gap or best.sample.output == worst.sample.output:
            ties += 1
            continue
        gaps.append(gap)
        rows.append({"input": {"messages": best.sample.input},
                     "preferred_output": _assistant(best), "non_preferred_output": _assistant(worst),
                     **{k: v for k, v in best.datasource_item.items()
                        if k not in ("input", "preferred_output", "non_preferred_output", "messages")}})
    summary = {"items": len(by_item), "pairs": len(rows), "ties": ties, "single": single,
               "mean_gap": sum(gaps) / len(gaps) if gaps else 0.0}
    return rows, summary


def _assistant(item: OutputItem) -> list[dict]:
    return [{"role": "assistant", "content": m.content or ""} for m in item.sample.output]
