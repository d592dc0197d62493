"""Reading the labels of rows: one place for single- and multi-label fields and their counts.

A label field is a list of strings (multi-label, e.g. EuroVoc's `labels`) or one string or number
(single-label); both are read as a list. The imbalance ratio is the count of the most frequent label
divided by the count of the rarest label that occurs (Buda et al.'s rho); 1.0 is perfectly balanced.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable


def row_labels(row: dict, label_key: str, *, where: str = "row") -> list[str]:
    """The labels of one row as a list of strings (a scalar label becomes a one-element list)."""
    if label_key not in row:
        raise KeyError(f"{where} has no label field {label_key!r} (keys: {', '.join(sorted(row))})")
    value = row[label_key]
    if isinstance(value, list):
        return [str(label) for label in value]
    if value is None:
        return []
    return [str(value)]


def labels_of(row: dict, label_key: str) -> list[str]:
    """`row_labels` for readers that take a row without the field as unlabelled (an eval's rows, a baseline's
    training rows): its labels, or [] when it has none."""
    return row_labels(row, label_key) if label_key in row else []


def label_set(rows: list[dict], label_key: str | None) -> list[str] | None:
    """Every label the rows name under `label_key`, sorted; None unless every row has a list there."""
    if not label_key or not rows or not all(isinstance(r.get(label_key), list) for r in rows):
        return None
    return sorted({label for r in rows for label in r[label_key]})


def label_counts(rows: Iterable[dict], label_key: str = "labels") -> Counter:
    """How many rows carry each label."""
    counts: Counter = Counter()
    for index, row in enumerate(rows):
        counts.update(set(row_labels(row, label_key, where=f"row {index + 1}")))
    return counts


def imbalance_ratio(counts: Counter | dict) -> float:
    """Most frequent label count / rarest (non-zero) label count; nan without labels."""
    present = [count for count in counts.values() if count > 0]
    if not present:
        return float("nan")
    return max(present) / min(present)
