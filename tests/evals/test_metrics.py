"""Eval aggregates checked against hand-computed values."""

import pytest

from openrft.evals import metrics


def test_reward_stats_noise_and_headroom():
    rewards = [[0.0, 1.0, 0.5], [0.5, 0.5, 0.5], [1.0, 0.0, 1.0]]
    s = metrics.reward_stats(rewards)
    assert s["n_items"] == 3 and s["runs"] == 3 and s["n_samples"] == 9
    assert s["mean"] == pytest.approx(5 / 9)
    assert s["run_means"] == pytest.approx([0.5, 0.5, 2 / 3])
    assert s["run_to_run_std"] == pytest.approx(0.0962250, abs=1e-6)  # sample std of the three run means
    assert s["headroom"] == pytest.approx((0.5 + 0.0 + 1 / 3) / 3)  # mean of (best - mean) per item
    assert s["zero_signal_share"] == pytest.approx(1 / 3)
    assert s["ci95"][0] < s["mean"] < s["ci95"][1]


def test_classification_metrics_micro_macro_and_unparsed():
    pairs = [({"a", "b"}, {"a"}), ({"c"}, {"c", "a"}), (None, {"b"})]
    m = metrics.classification_metrics(pairs, ["a", "b", "c"])
    # tp: a1 c1 = 2; fp: b1 = 1; fn: a1 b1 = 2
    assert m["micro"]["precision"] == pytest.approx(2 / 3)
    assert m["micro"]["recall"] == pytest.approx(2 / 4)
    assert m["per_label"]["a"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2,
                                   "predicted": 1}
    assert m["per_label"]["b"]["precision"] == 0.0 and m["per_label"]["b"]["support"] == 1
    assert m["macro"]["recall"] == pytest.approx((0.5 + 0.0 + 1.0) / 3)
    assert m["parsed_share"] == pytest.approx(2 / 3)
    # a label predicted but never true enters the macro average with precision 0 (scikit-learn's convention)
    only_false = metrics.classification_metrics([({"a", "d"}, {"a"})], ["a", "b", "d"])
    assert only_false["macro"]["precision"] == pytest.approx((1.0 + 0.0) / 2)
    assert only_false["macro"]["recall"] == pytest.approx((1.0 + 0.0) / 2)
    assert m["samples_f1"] == pytest.approx((2 / 3 + 2 / 3 + 0.0) / 3)


def test_baselines_follow_training_frequencies_and_cardinality():
    train = [{"labels": ["a", "b"]}, {"labels": ["a"]}, {"labels": ["a", "c"]}, {"labels": ["b", "a"]}]
    preds = metrics.baseline_predictions(train, n_items=5, runs=2, labels=["a", "b", "c", "d"], seed=1)
    assert preds["_k"] == 2  # mean cardinality 1.75 rounds to 2
    assert all(p == ["a", "b"] for item in preds["most_frequent"] for p in item)
    assert all(len(p) in (1, 2) and set(p) <= {"a", "b", "c", "d"} for item in preds["random"] for p in item)
    assert all(p == ["a", "b", "c", "d"] for item in preds["every_label"] for p in item)
    single = metrics.baseline_predictions([{"labels": ["a"]}, {"labels": ["b"]}], n_items=2, runs=1, labels=["a", "b"])
    assert "every_label" not in single  # naming every label is no answer to a single-label task


def test_every_label_scores_a_high_macro_f1_without_skill():
    # Each class c, always predicted, has precision f_c (its frequency), recall 1, F1 2f_c/(1+f_c): the macro-F1
    # that beats the most-frequent baseline's without telling one act from another.
    truth = [{"a", "b"}, {"a"}, {"a", "c"}, {"b", "d"}]
    labels = ["a", "b", "c", "d"]
    every = metrics.classification_metrics([(set(labels), t) for t in truth], labels)
    freq = {"a": 3 / 4, "b": 2 / 4, "c": 1 / 4, "d": 1 / 4}
    assert every["macro"]["f1"] == pytest.approx(sum(2 * f / (1 + f) for f in freq.values()) / 4)
    top = metrics.classification_metrics([({"a", "b"}, t) for t in truth], labels)  # the 2 most frequent
    assert every["macro"]["f1"] > top["macro"]["f1"] and every["micro"]["f1"] < top["micro"]["f1"]


def test_difference_vs_noise():
    a = {"mean": 0.30, "run_to_run_std": 0.01, "runs": 3, "ci95": [0.2, 0.4]}
    b = {"mean": 0.40, "run_to_run_std": 0.01, "runs": 3, "ci95": [0.3, 0.5]}
    assert metrics.difference_vs_noise(a, b)["significant"]
    b2 = {**b, "mean": 0.31}
    assert not metrics.difference_vs_noise(a, b2)["significant"]


def test_macro_f1_difference_matches_classification_metrics_and_clusters_by_group():
    import random

    rng = random.Random(0)
    labels = ["a", "b", "c", "d", "e"]
    acts = [set(rng.sample(labels, rng.randint(1, 3))) for _ in range(20)]
    answers = [set(rng.sample(labels, 2)) | ({sorted(t)[0]} if i % 2 else set()) for i, t in enumerate(acts)]
    truth = [t for t in acts for _ in range(3)]  # each act sampled 3 times, its runs alike: they move together
    model = [a for a in answers for _ in range(3)]
    top = [{"a", "b"} for _ in truth]
    groups = [i // 3 for i in range(60)]
    d = metrics.macro_f1_difference(list(zip(model, truth)), list(zip(top, truth)), groups, labels)
    expected = (metrics.classification_metrics(list(zip(model, truth)), labels)["macro"]["f1"]
                - metrics.classification_metrics(list(zip(top, truth)), labels)["macro"]["f1"])
    assert d["diff"] == pytest.approx(expected) and d["n_groups"] == 20 and d["n_samples"] == 60
    assert d["ci95"][0] < d["diff"] < d["ci95"][1]
    # Treating the 3 alike runs of an act as 3 independent samples would narrow the interval.
    loose = metrics.macro_f1_difference(list(zip(model, truth)), list(zip(top, truth)), list(range(60)), labels)
    assert loose["ci95"][1] - loose["ci95"][0] < d["ci95"][1] - d["ci95"][0]
    assert metrics.macro_f1_difference(list(zip(top, truth)), list(zip(top, truth)), groups, labels)["ci95"] == [0, 0]
    with pytest.raises(ValueError, match="same samples"):
        metrics.macro_f1_difference([({"a"}, {"a"})], [({"a"}, {"b"})], [0], labels)


def test_a_single_label_field_is_read_as_one_label_not_as_characters():
    train = [{"labels": "unfair"}, {"labels": "unfair"}, {"labels": "fair"}, {"other": 1}]
    assert metrics.label_frequencies(train) == {"unfair": 2, "fair": 1}  # a row without the field: unlabelled
    preds = metrics.baseline_predictions(train, n_items=2, runs=1, labels=["fair", "unfair"])
    assert preds["_k"] == 1 and preds["most_frequent"] == [[["unfair"]], [["unfair"]]]
