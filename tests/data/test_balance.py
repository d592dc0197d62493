"""Balanced sampling with a cap on repeats (issue 4, item 3), measured on the real EuroVoc and UNFAIR-ToS rows."""

from __future__ import annotations

import json
import math
from collections import Counter

from typer.testing import CliRunner

from openrft.cli import app
from openrft.data import balance_rows, balance_weights, imbalance_ratio, label_counts, load_rows, write_rows


def repeats(epoch):
    return Counter(row["id"] for row in epoch)


def test_eurovoc_training_split_gets_a_much_lower_imbalance_ratio(eurovoc_train):
    before = imbalance_ratio(label_counts(eurovoc_train))
    epoch = balance_rows(eurovoc_train, seed=0, max_repeats=4)
    after = imbalance_ratio(label_counts(epoch))
    assert before > 100  # trade in 152 records, international organisations in 1
    assert after < before / 4
    assert max(repeats(epoch).values()) <= 4


def test_a_dominant_class_is_down_weighted(unfair_train):
    share_none = lambda rows: label_counts(rows)["None"] / len(rows)  # noqa: E731
    epoch = balance_rows(unfair_train, seed=0, max_repeats=4)
    assert share_none(unfair_train) > 0.85
    assert share_none(epoch) < 0.5
    assert imbalance_ratio(label_counts(epoch)) < imbalance_ratio(label_counts(unfair_train)) / 5


def test_pure_deterministic_and_capped(eurovoc_train):
    snapshot = json.dumps(eurovoc_train, sort_keys=True)
    first = balance_rows(eurovoc_train, seed=3, max_repeats=2.5)
    assert [r["id"] for r in first] == [r["id"] for r in balance_rows(eurovoc_train, seed=3, max_repeats=2.5)]
    assert [r["id"] for r in first] != [r["id"] for r in balance_rows(eurovoc_train, seed=4, max_repeats=2.5)]
    assert json.dumps(eurovoc_train, sort_keys=True) == snapshot  # the input is untouched
    assert max(repeats(first).values()) <= math.ceil(2.5)
    weights = balance_weights(eurovoc_train, max_repeats=2.5)
    assert weights.min() >= 1 / 2.5 - 1e-9 and weights.max() <= 2.5 + 1e-9


def test_every_row_is_visited_over_a_few_epochs(unfair_train):
    seen = set()
    for epoch_seed in range(20):
        seen |= {row["id"] for row in balance_rows(unfair_train, seed=epoch_seed)}
    assert seen == {row["id"] for row in unfair_train}


def test_single_label_and_unlabelled_rows():
    rows = [{"id": f"a{i}", "label": "common"} for i in range(40)] + [{"id": f"b{i}", "label": "rare"} for i in range(4)]
    epoch = balance_rows(rows, label_key="label", seed=0, max_repeats=5)
    counts = Counter(row["label"] for row in epoch)
    assert counts["common"] / counts["rare"] < 3  # from 10 to about 1
    plain = [{"id": str(i), "labels": []} for i in range(5)]
    assert sorted(r["id"] for r in balance_rows(plain, seed=1)) == [str(i) for i in range(5)]


def test_cli_balance_writes_the_epoch_and_reports_both_ratios(tmp_path, eurovoc_train):
    rows = [{"messages": [{"role": "user", "content": f"Classify act {r['id']}"}], "id": r["id"], "labels": r["labels"]}
            for r in eurovoc_train]
    source = write_rows(rows, tmp_path / "train.jsonl")
    result = CliRunner().invoke(app, ["data", "balance", str(source), "--out", str(tmp_path / "balanced.jsonl"),
                                      "--png", str(tmp_path / "balance.png")])
    assert result.exit_code == 0, result.output
    balanced = load_rows(tmp_path / "balanced.jsonl", allow_duplicates=True)
    expected = imbalance_ratio(label_counts(balanced))
    assert f"imbalance ratio {imbalance_ratio(label_counts(rows)):.1f} -> {expected:.1f}" in result.output
    assert (tmp_path / "balance.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_offline_task_rows_balance_without_the_data_folder():
    from openrft.tasks import get_task

    rows = get_task("eurovoc-offline").rows("train")
    before = imbalance_ratio(label_counts(rows))
    after = imbalance_ratio(label_counts(balance_rows(rows, seed=0)))
    assert before > 4 and after < before / 2  # finance has 10 microthesauri, science 2
