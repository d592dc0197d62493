"""Train/validation splits by group, stratified on labels, reproducible from a seed.

Rows that belong together (EuroVoc: the translations of one act share a `celex_id` and one label set)
form a group, and a group goes wholly to one side: otherwise the model is validated on a translation of
an act it trained on. Over the groups, the split is *iterative stratification* (Sechidis, Tsoumakas and
Vlahavas, 2011; Szymański and Kajdanowicz, 2017) through the `iterative-stratification` package: it
hands out the rarest labels first so that every label keeps about the same share on both sides, which a
random split of a few hundred multi-label rows does not (a label seen in 5 acts can easily land entirely
in one side). Without labels, groups are shuffled with the seed and cut.

`valid_fraction` is a fraction of groups; with groups of unequal size the fraction of rows differs a little.
"""

from __future__ import annotations

import random

import numpy as np

from openrft.data.labels import row_labels
from openrft.errors import InputError


class SplitError(InputError, ValueError):
    """A split that cannot be made (missing group key, too few groups, a bad fraction)."""


def split_rows(rows: list[dict], *, group_key: str | None = "celex_id", stratify: str | None = "labels",
               valid_fraction: float = 0.2, seed: int = 0) -> tuple[list[dict], list[dict]]:
    """Split rows into (train, validation); groups never straddle, labels keep their shares.

    `group_key=None` makes every row its own group; `stratify=None` splits without looking at labels.
    Rows keep their input order within each side.
    """
    if not 0 < valid_fraction < 1:
        raise SplitError(f"valid_fraction must be between 0 and 1, got {valid_fraction}")
    groups: dict[str, list[int]] = {}
    for index, row in enumerate(rows):
        if group_key is None:
            key = str(index)
        elif group_key not in row:
            raise SplitError(f"row {index + 1} has no group key {group_key!r} (keys: {', '.join(sorted(row))})")
        else:
            key = str(row[group_key])
        groups.setdefault(key, []).append(index)
    names = list(groups)
    if len(names) < 2:
        raise SplitError(f"need at least 2 groups to split, got {len(names)} (group key {group_key!r})")
    n_valid = max(1, round(len(names) * valid_fraction))
    if n_valid >= len(names):
        raise SplitError(f"valid_fraction {valid_fraction} leaves no training group out of {len(names)}")

    if stratify is None:
        order = names[:]
        random.Random(seed).shuffle(order)
        valid_groups = set(order[:n_valid])
    else:
        valid_groups = _stratified_groups(rows, groups, stratify, n_valid, seed)

    train = [row for name in names if name not in valid_groups for row in (rows[i] for i in groups[name])]
    valid = [row for name in names if name in valid_groups for row in (rows[i] for i in groups[name])]
    position = {id(row): index for index, row in enumerate(rows)}
    return sorted(train, key=lambda r: position[id(r)]), sorted(valid, key=lambda r: position[id(r)])


def _stratified_groups(rows: list[dict], groups: dict[str, list[int]], label_key: str, n_valid: int,
                       seed: int) -> set[str]:
    from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

    names = list(groups)
    group_labels = []
    for name in names:
        labels: set[str] = set()
        for index in groups[name]:
            labels.update(row_labels(rows[index], label_key, where=f"row {index + 1}"))
        group_labels.append(labels)
    vocabulary = sorted(set().union(*group_labels))
    if not vocabulary:
        raise SplitError(f"no row has any label under {label_key!r}: pass stratify=None to split without labels")
    column = {label: j for j, label in enumerate(vocabulary)}
    matrix = np.zeros((len(names), len(vocabulary)), dtype=int)
    for i, labels in enumerate(group_labels):
        for label in labels:
            matrix[i, column[label]] = 1
    splitter = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=n_valid, random_state=seed)
    _, valid_index = next(splitter.split(np.zeros(len(names)), matrix))
    return {names[i] for i in valid_index}


def group_of(row: dict, group_key: str | None) -> str:
    """The group a row belongs to: `row[group_key]`; without one, the row itself (its `id`, else a hash of its
    prompt)."""
    if group_key is not None and group_key in row:
        return f"{group_key}={row[group_key]}"
    if "id" in row:
        return f"id={row['id']}"
    import hashlib
    import json

    return "messages#" + hashlib.sha1(json.dumps(row.get("messages"), sort_keys=True).encode()).hexdigest()[:16]


def group_subset(rows: list[dict], limit: int | None, seed: int, group_key: str | None = None, *,
                 exclude_groups: set[str] | frozenset[str] = frozenset(), any_member: bool = False) -> list[dict]:
    """A seeded subset of at most `limit` rows spread over as many groups as possible, in file order.

    Groups are taken in a seeded random order, one row of each (its first in file order; with `any_member`, a
    seeded random one of its rows), then a second row of each group that has one, and so on until `limit` rows:
    24 rows of EuroVoc's validation file are 24 acts, not one act's 22 translations and two others. A group the
    subset touches counts as used as a whole: a held-out set excludes it (`exclude_groups=groups_in(subset,
    group_key)`), untaken translations included. Groups in `exclude_groups` are never taken. With `limit` None
    (or not smaller than what is left), every row of the remaining groups is returned. Without `group_key` every
    row is its own group (see `group_of`).

    The trainer takes its `max_train_rows` this way too, with `any_member` (an act in a seeded random one of its
    languages): EuroVoc's training file holds 110 acts in 248 rows, 138 of them translations of 10 acts, so about
    53 of a plain random 96 rows were those 10 acts; spread, the 96 rows are 96 acts.
    """
    members: dict[str, list[int]] = {}
    for index, row in enumerate(rows):
        name = group_of(row, group_key)
        if name not in exclude_groups:
            members.setdefault(name, []).append(index)
    names = list(members)
    available = sum(len(m) for m in members.values())
    if not limit or limit >= available:
        keep = sorted(i for m in members.values() for i in m)
        return [rows[i] for i in keep]
    rng = random.Random(seed)
    rng.shuffle(names)
    if any_member:
        for name in names:
            rng.shuffle(members[name])
    chosen: list[int] = []
    depth = 0
    while len(chosen) < limit:
        for name in names:
            if depth < len(members[name]):
                chosen.append(members[name][depth])
                if len(chosen) == limit:
                    break
        depth += 1
    return [rows[i] for i in sorted(chosen)]


def groups_in(rows: list[dict], group_key: str | None) -> set[str]:
    """The groups that `rows` cover (for rows taken from one file: `group_subset`'s `exclude_groups`)."""
    return {group_of(row, group_key) for row in rows}
