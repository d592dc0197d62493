"""The paired, group-clustered bootstrap and the comparison built on it, on synthetic cases with known answers."""

from types import SimpleNamespace

import numpy as np
import pytest

from openrft.evals.compare import compare, comparison_table, paired_items
from openrft.evals.metrics import paired_difference


def test_identical_models_give_a_ci_around_zero():
    rewards = np.random.default_rng(1).uniform(0, 1, 60)
    d = paired_difference(rewards, rewards, [i // 3 for i in range(60)])
    assert d["diff"] == 0.0 and d["ci95"] == [0.0, 0.0] and not d["excludes_zero"]
    assert d["n_items"] == 60 and d["n_groups"] == 20


def test_two_draws_of_the_same_model_have_a_ci_that_contains_zero():
    rng = np.random.default_rng(2)
    truth = rng.uniform(0, 1, 80)
    base, tuned = truth + rng.normal(0, 0.05, 80), truth + rng.normal(0, 0.05, 80)
    d = paired_difference(base, tuned, list(range(80)))
    assert d["ci95"][0] < 0 < d["ci95"][1]
    assert d["ci95"][1] - d["ci95"][0] < 0.06  # about 2 × 1.96 × 0.05·√2 / √80 ≈ 0.03


def test_a_constant_shift_gives_a_point_ci():
    base = np.random.default_rng(3).uniform(0, 0.9, 40)
    d = paired_difference(base, base + 0.1, [i % 7 for i in range(40)])
    assert d["diff"] == pytest.approx(0.1)
    assert d["ci95"] == pytest.approx([0.1, 0.1])
    assert d["excludes_zero"]


def test_clustering_widens_the_ci_when_items_of_a_group_move_together():
    rng = np.random.default_rng(4)
    n_groups, size = 15, 8
    group_effect = np.repeat(rng.normal(0, 0.2, n_groups), size)  # translations of one act share their gain
    base = rng.uniform(0, 1, n_groups * size)
    tuned = base + 0.05 + group_effect + rng.normal(0, 0.02, n_groups * size)
    groups = np.repeat([f"act{g}" for g in range(n_groups)], size).tolist()
    clustered = paired_difference(base, tuned, groups)
    naive = paired_difference(base, tuned, list(range(n_groups * size)))
    assert clustered["diff"] == pytest.approx(naive["diff"])
    assert clustered["n_groups"] == n_groups and naive["n_groups"] == n_groups * size
    width = lambda d: d["ci95"][1] - d["ci95"][0]  # noqa: E731
    assert width(clustered) > 2 * width(naive)  # √8 ≈ 2.8 in expectation


def test_the_bootstrap_is_seeded_and_weights_items_not_groups():
    base = [0.0, 0.0, 0.0, 0.0]
    tuned = [1.0, 1.0, 1.0, 0.0]  # group a: three items gaining 1, group b: one item gaining 0
    d = paired_difference(base, tuned, ["a", "a", "a", "b"], seed=5)
    assert d["diff"] == pytest.approx(0.75)  # the mean over items, not over groups (0.5)
    assert d == paired_difference(base, tuned, ["a", "a", "a", "b"], seed=5)
    assert d["ci95"] == pytest.approx([0.0, 1.0])  # resampling {b, b} gives 0, {a, a} gives 1


def test_the_ci_is_scipys_bca_interval_and_corrects_a_skewed_bootstrap():
    from scipy.stats import bootstrap

    rewards = np.random.default_rng(6).exponential(0.2, 50)  # a skewed gain: BCa and percentile intervals differ
    d = paired_difference(np.zeros(50), rewards, list(range(50)), seed=3)
    bca = bootstrap((rewards,), np.mean, method="BCa", n_resamples=2000, rng=np.random.default_rng(3))
    percentile = bootstrap((rewards,), np.mean, method="percentile", n_resamples=2000,
                           rng=np.random.default_rng(3))
    # the same method on other draws of the same data (scipy draws its own): equal up to Monte Carlo noise
    assert d["ci95"] == pytest.approx([bca.confidence_interval.low, bca.confidence_interval.high], abs=0.005)
    # a right-skewed mean: BCa moves the interval up from the percentile one
    assert d["ci95"][1] > percentile.confidence_interval.high + 0.005


def test_mismatched_inputs_are_refused():
    with pytest.raises(ValueError):
        paired_difference([0.1, 0.2], [0.1], ["a", "b"])
    with pytest.raises(ValueError):
        paired_difference([], [], [])


def _result(name: str, means: list[float], groups: list[str], ids: list[str] | None = None) -> SimpleNamespace:
    ids = ids or [f"r{i}" for i in range(len(means))]
    items = [{"index": i, "id": ids[i], "group": groups[i], "mean": m} for i, m in enumerate(means)]
    prf = {"precision": 0.5, "recall": 0.4, "f1": 0.44}
    return SimpleNamespace(summary={"name": name, "model": name, "runs": 3, "items": items,
                                    "reward": {"mean": float(np.mean(means)), "run_to_run_std": 0.01, "runs": 3,
                                               "ci95": [0.0, 1.0]},
                                    "classification": {"micro": prf, "macro": {**prf, "f1": 0.2}}})


def test_compare_uses_the_clustered_ci_on_the_same_items_and_shows_macro_f1():
    groups = [f"celex_id=A{i // 2}" for i in range(20)]
    base = _result("base", [0.3] * 20, groups)
    tuned = _result("tuned", [0.4] * 20, groups)
    rows = compare([base, tuned])
    assert rows[1]["vs_first_rule"] == "paired 95% CI by group"
    assert rows[1]["vs_first_diff"] == pytest.approx(0.1) and rows[1]["vs_first_ci95"] == pytest.approx([0.1, 0.1])
    assert rows[1]["vs_first_n_items"] == 20 and rows[1]["vs_first_n_groups"] == 10
    assert rows[1]["vs_first_significant"] is True
    assert rows[0]["macro_f1"] == 0.2 and rows[0]["micro_f1"] == 0.44
    from rich.console import Console

    console = Console(record=True, width=250)
    console.print(comparison_table(rows))
    text = console.export_text()
    assert "macro F1" in text and "20 items of 10 groups" in text and "[+0.100, +0.100]" in text


def test_compare_falls_back_to_the_noise_rule_on_different_items():
    base = _result("base", [0.3] * 4, ["a", "b", "c", "d"])
    other = _result("other", [0.5] * 4, ["a", "b", "c", "d"], ids=["x0", "x1", "x2", "x3"])
    assert paired_items(base.summary, other.summary) is None
    row = compare([base, other])[1]
    assert row["vs_first_rule"] == "2x run-to-run std" and "vs_first_ci95" not in row
