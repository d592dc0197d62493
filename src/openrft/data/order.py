"""The order in which a run visits its training rows: the epochs' (balanced) order.

The trainer, the doctor and the benchmarks take their order from here (through `openrft.runs.ResolvedJob`), so
that the doctor samples the rows the trainer will train on. Which rows (the `max_train_rows` subset):
`openrft.data.splits.group_subset`.
"""

from __future__ import annotations

import random


def epoch_order(rows: list[dict], *, n_epochs: int, seed: int, balance: bool, label_key: str | None) -> list[int]:
    """Row indices for all epochs: balanced by labels (openrft.data.balance_rows) or shuffled, seeded per epoch."""
    from openrft.data.balance import balance_rows

    order: list[int] = []
    indexed = [{**row, "_row_index": i} for i, row in enumerate(rows)]
    for epoch in range(n_epochs):
        if balance and label_key and all(isinstance(r.get(label_key), list) for r in rows):
            chosen = [r["_row_index"] for r in balance_rows(indexed, label_key=label_key, seed=seed + epoch)]
            random.Random(seed + epoch).shuffle(chosen)
            order.extend(chosen[:len(rows)] if len(chosen) >= len(rows) else chosen)
        else:
            idx = list(range(len(rows)))
            random.Random(seed + epoch).shuffle(idx)
            order.extend(idx)
    return order
