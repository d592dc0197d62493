"""Splits by group, stratified on labels, reproducible from a seed (issue 4, item 2), on the real acts."""

from __future__ import annotations

import statistics
from collections import Counter

import pytest
from typer.testing import CliRunner

from openrft.cli import app
from openrft.data import SplitError, load_rows, split_rows, write_rows


def validation_share_deviation(train, validation, total_counts):
    """Mean |share of a label's acts in validation - 20%| over labels with at least 5 acts."""
    acts = lambda rows: {r["celex_id"]: r["labels"] for r in rows}  # noqa: E731
    in_valid = Counter(label for labels in acts(validation).values() for label in labels)
    return statistics.mean(abs(in_valid[label] / n - 0.2) for label, n in total_counts.items() if n >= 5)


def test_groups_never_straddle_and_labels_keep_their_shares(eurovoc_records):
    totals = Counter(label for labels in {r["celex_id"]: r["labels"] for r in eurovoc_records}.values()
                     for label in labels)
    stratified, random_split = [], []
    for seed in range(3):
        train, validation = split_rows(eurovoc_records, group_key="celex_id", valid_fraction=0.2, seed=seed)
        assert len(train) + len(validation) == len(eurovoc_records)
        assert not {r["celex_id"] for r in train} & {r["celex_id"] for r in validation}
        stratified.append(validation_share_deviation(train, validation, totals))
        train, validation = split_rows(eurovoc_records, group_key="celex_id", stratify=None, valid_fraction=0.2, seed=seed)
        assert not {r["celex_id"] for r in train} & {r["celex_id"] for r in validation}
        random_split.append(validation_share_deviation(train, validation, totals))
    # Iterative stratification keeps every label near 20% in validation; a random group split does not.
    assert max(stratified) < 0.05
    assert statistics.mean(stratified) < statistics.mean(random_split) / 2


def test_same_seed_same_split_other_seed_other_split(eurovoc_records):
    first = split_rows(eurovoc_records, seed=7)
    again = split_rows(eurovoc_records, seed=7)
    other = split_rows(eurovoc_records, seed=8)
    ids = lambda part: [r["id"] for r in part]  # noqa: E731
    assert ids(first[1]) == ids(again[1]) and ids(first[0]) == ids(again[0])
    assert set(ids(first[1])) != set(ids(other[1]))


def test_bad_inputs_are_clear_errors(eurovoc_records):
    with pytest.raises(SplitError, match="no group key 'doc'"):
        split_rows(eurovoc_records, group_key="doc")
    with pytest.raises(SplitError, match="between 0 and 1"):
        split_rows(eurovoc_records, valid_fraction=1.5)
    with pytest.raises(SplitError, match="at least 2 groups"):
        split_rows(eurovoc_records[:1])


def test_cli_split_writes_two_files_without_shared_acts(tmp_path, eurovoc_records):
    rows = [{"messages": [{"role": "user", "content": f"Classify act {r['id']}"}], "celex_id": r["celex_id"],
             "labels": r["labels"]} for r in eurovoc_records]
    source = write_rows(rows, tmp_path / "all.jsonl")
    result = CliRunner().invoke(app, ["data", "split", str(source), "--out-dir", str(tmp_path / "out"),
                                      "--valid-fraction", "0.25", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "group key: celex_id" in result.output
    train = load_rows(tmp_path / "out" / "train.jsonl")
    validation = load_rows(tmp_path / "out" / "validation.jsonl")
    assert len(train) + len(validation) == len(rows)
    assert not {r["celex_id"] for r in train} & {r["celex_id"] for r in validation}
    check = CliRunner().invoke(app, ["data", "check", str(tmp_path / "out" / "train.jsonl"), "--against",
                                     str(tmp_path / "out" / "validation.jsonl"), "--group-key", "celex_id"])
    assert check.exit_code == 0, check.output


def test_a_subset_spreads_over_groups_and_any_member_varies_the_row_taken():
    """A training subset of a file where a few acts have many translations: as many acts as rows, not the
    translations of the few (EuroVoc's 248 training rows are 110 acts, 138 rows of them 10 acts' translations)."""
    from openrft.data.splits import group_subset

    rows = [{"id": f"big{g}_{k}", "act": f"big{g}", "labels": ["x"]} for g in range(3) for k in range(20)]
    rows += [{"id": f"one{i}", "act": f"one{i}", "labels": ["y"]} for i in range(20)]
    for seed in range(5):
        subset = group_subset(rows, 12, seed, "act", any_member=True)
        assert len(subset) == 12 and len({r["act"] for r in subset}) == 12
        assert [rows.index(r) for r in subset] == sorted(rows.index(r) for r in subset)  # file order
        assert subset == group_subset(rows, 12, seed, "act", any_member=True)  # seeded
    taken = {r["id"] for seed in range(10) for r in group_subset(rows, 23, seed, "act", any_member=True)
             if r["act"] == "big0"}
    assert len(taken) > 3  # a group's row is any of its members, not always its first
    assert {r["id"] for r in group_subset(rows, 23, 0, "act") if r["act"] == "big0"} == {"big0_0"}
    assert len(group_subset(rows, 30, 0, "act", any_member=True)) == 30  # past one per group: a second row
