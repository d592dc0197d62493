"""Aggregates of an eval run: reward statistics, run-to-run noise, classification metrics, baselines.

Classification figures are computed from the parsed predictions (`output_json.labels`), not from the
reward, so that they stay meaningful whatever grader is used. Baselines are graded with the *same*
grader as the model: their rewards are directly comparable.
"""

from __future__ import annotations

import json
import math
import random
import warnings
from collections import Counter
from statistics import mean, pstdev
from typing import Any

import numpy as np

from openrft.data.labels import labels_of

Z95 = 1.96


def reward_stats(rewards_per_item: list[list[float]]) -> dict:
    """Mean reward with a 95% interval over items, per-item spread, headroom and run-to-run noise.

    `rewards_per_item[i][r]` is the reward of run r on item i. Run-to-run std is the standard deviation
    of the dataset mean reward across the k runs (run r = the r-th sample of every item): the noise that
    any difference between two models must exceed.
    """
    items = [r for r in rewards_per_item if r]
    if not items:
        return {"n_items": 0, "n_samples": 0, "mean": None}
    item_means = [mean(r) for r in items]
    flat = [x for r in items for x in r]
    runs = min(len(r) for r in items)
    run_means = [mean(r[k] for r in items) for k in range(runs)]
    n = len(item_means)
    sem = (np.std(item_means, ddof=1) / math.sqrt(n)) if n > 1 else 0.0
    return {
        "n_items": n,
        "n_samples": len(flat),
        "runs": runs,
        "mean": mean(flat),
        "ci95": [mean(item_means) - Z95 * sem, mean(item_means) + Z95 * sem],
        "std": pstdev(flat),
        "run_means": run_means,
        "run_to_run_std": float(np.std(run_means, ddof=1)) if runs > 1 else 0.0,
        "item_std_mean": mean(pstdev(r) for r in items),
        "best_of_k_mean": mean(max(r) for r in items),
        "headroom": mean(max(r) - mean(r) for r in items),
        "zero_signal_share": mean(1.0 if max(r) == min(r) else 0.0 for r in items),
        "distinct_rewards": len({round(x, 6) for x in flat}),
    }


def per_item_stats(rewards: list[float]) -> dict:
    return {"mean": mean(rewards), "max": max(rewards), "min": min(rewards), "std": pstdev(rewards), "k": len(rewards)}


def predicted_labels(sample_json) -> set[str] | None:
    """The label set a sample predicts (`output_json.labels`), or None when it did not parse."""
    if isinstance(sample_json, dict) and isinstance(sample_json.get("labels"), list):
        return {str(x) for x in sample_json["labels"] if isinstance(x, str)}
    return None


def classification_metrics(pairs: list[tuple[set[str] | None, set[str]]], labels: list[str]) -> dict:
    """Micro and macro precision/recall/F1 and per-label figures over (predicted, true) label sets.

    An unparsed prediction (None) counts as predicting nothing.
    """
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    for predicted, true in pairs:
        predicted = predicted or set()
        for label in predicted & true:
            tp[label] += 1
        for label in predicted - true:
            fp[label] += 1
        for label in true - predicted:
            fn[label] += 1
    per_label = {}
    for label in labels:
        p = _ratio(tp[label], tp[label] + fp[label])
        r = _ratio(tp[label], tp[label] + fn[label])
        per_label[label] = {"precision": p, "recall": r, "f1": _f1(p, r), "support": tp[label] + fn[label],
                            "predicted": tp[label] + fp[label]}
    micro_p = _ratio(sum(tp.values()), sum(tp.values()) + sum(fp.values()))
    micro_r = _ratio(sum(tp.values()), sum(tp.values()) + sum(fn.values()))
    # Macro averages run over the labels that occur in the references or the predictions (scikit-learn's
    # default): a label predicted but never true counts with precision 0 instead of being left out.
    present = [label for label in labels if per_label[label]["support"] > 0 or per_label[label]["predicted"] > 0]
    macro = {k: mean(per_label[label][k] for label in present) if present else 0.0
             for k in ("precision", "recall", "f1")}
    # Sample-averaged F1 (the mean of per-answer F1) is what an F1 grader rewards.
    sample_f1 = mean(_f1(_ratio(len((p or set()) & t), len(p or set())), _ratio(len((p or set()) & t), len(t)))
                     for p, t in pairs) if pairs else 0.0
    return {"micro": {"precision": micro_p, "recall": micro_r, "f1": _f1(micro_p, micro_r)}, "macro": macro,
            "samples_f1": sample_f1, "per_label": per_label, "n": len(pairs),
            "parsed_share": mean(1.0 if p is not None else 0.0 for p, _ in pairs) if pairs else 0.0}


def _ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def label_frequencies(rows: list[dict], label_key: str = "labels") -> Counter:
    return Counter(label for row in rows for label in labels_of(row, label_key))


def baseline_predictions(train_rows: list[dict], n_items: int, runs: int, *, labels: list[str],
                         label_key: str = "labels", seed: int = 0) -> dict[str, Any]:
    """Model-free predictors: predictions[name][item][run] is a label list (and `_k` the most_frequent k).

    - `most_frequent`: always the k most frequent training labels, k = the rounded mean label cardinality;
    - `random`: k labels drawn uniformly, k drawn from the training cardinality distribution;
    - `every_label` (multi-label rows only): always every label. Recall 1 for every class makes its macro-F1 high
      (each class scores 2f/(1+f) for its frequency f), so a model that beats the others on macro-F1 only by
      naming more labels has learnt nothing.
    They reveal reward hacking: a model that only beats them by predicting frequent labels has learnt little.
    """
    frequencies = label_frequencies(train_rows, label_key)
    cardinalities = [len(labels_of(row, label_key)) for row in train_rows] or [1]
    k = max(1, round(mean(cardinalities)))
    top = [label for label, _ in frequencies.most_common(k)]
    rng = random.Random(seed)
    random_preds = [[rng.sample(labels, min(len(labels), rng.choice(cardinalities))) for _ in range(runs)]
                    for _ in range(n_items)]
    predictions: dict[str, Any] = {"most_frequent": [[list(top) for _ in range(runs)] for _ in range(n_items)],
                                   "random": random_preds, "_k": k}
    if max(cardinalities) > 1:
        predictions["every_label"] = [[list(labels) for _ in range(runs)] for _ in range(n_items)]
    return predictions


def baseline_sample(predicted: list[str]) -> dict:
    """A grader `sample` for a baseline prediction, shaped as the model's would be."""
    output = {"labels": predicted}
    text = json.dumps(output)
    return {"output_text": text, "output_json": output, "output_tools": [],
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}]}


def difference_vs_noise(a: dict, b: dict) -> dict:
    """Is `b.mean - a.mean` larger than run-to-run noise? Noise = sqrt(std_a² + std_b²) of the run means;
    a difference beyond twice that is called significant (when either side has a single run, the item-level
    95% intervals are compared instead)."""
    diff = b["mean"] - a["mean"]
    noise = math.sqrt(a.get("run_to_run_std", 0.0) ** 2 + b.get("run_to_run_std", 0.0) ** 2)
    if a.get("runs", 1) > 1 and b.get("runs", 1) > 1:
        return {"diff": diff, "noise": noise, "significant": abs(diff) > 2 * noise, "rule": "2x run-to-run std"}
    overlap = not (a["ci95"][1] < b["ci95"][0] or b["ci95"][1] < a["ci95"][0])
    return {"diff": diff, "noise": noise, "significant": not overlap, "rule": "95% intervals do not overlap"}


BOOTSTRAP_BATCH = 256  # draws (and jackknife samples) per call: bounds memory at 256 × items weights


def cluster_bootstrap_ci(statistic, groups: list, n_boot: int, seed: int, *,
                         method: str = "BCa") -> tuple[float, int, list[float]]:
    """`statistic` on the items as they are, the number of groups, and a 95% bootstrap CI of `statistic`,
    resampling whole groups.

    `statistic(weights)` takes a (k, n_items) array of item weights (how often each item's group was drawn) and
    returns k values. Both clustered comparisons use it: the reward gain (a weighted mean) and the macro-F1
    difference (recomputed from label counts). The interval is scipy's bias-corrected and accelerated one
    (Efron 1987; the jackknife leaves out one group at a time) unless `method` names another of scipy's
    ("percentile": what openrft used before, kept for `benchmarks/ci_coverage.py`). Macro-F1 is not a mean: on
    held-out sets shaped like the EuroVoc demo's, its estimate comes out about 0.025 low and a percentile
    interval covers the true difference 38% of the time, BCa's 72% (benchmarks/ci_coverage.py); for a mean BCa
    moves the interval only as far as the data are skewed. With one group, or draws that never vary, the CI is
    the statistic itself.
    """
    from scipy.stats import DegenerateDataWarning, bootstrap

    _, codes = np.unique(np.asarray([str(g) for g in groups]), return_inverse=True)
    n_groups = int(codes.max()) + 1
    observed = float(statistic(np.ones((1, len(codes))))[0])

    def on_groups(drawn: np.ndarray, axis: int = -1) -> np.ndarray:  # noqa: ARG001 (scipy passes axis=-1)
        """The statistic of each row of `drawn`, an (..., m) array of group indices."""
        flat = drawn.reshape(-1, drawn.shape[-1])
        counts = np.zeros((len(flat), n_groups))
        np.add.at(counts, (np.arange(len(flat))[:, None], flat), 1.0)
        return statistic(counts[:, codes]).reshape(drawn.shape[:-1])

    if n_groups < 2:
        return observed, n_groups, [observed, observed]
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", DegenerateDataWarning)  # draws that never vary: NaN, handled below
        result = bootstrap((np.arange(n_groups),), on_groups, n_resamples=n_boot, method=method, vectorized=True,
                           batch=BOOTSTRAP_BATCH, rng=np.random.default_rng(seed))
    draws = result.bootstrap_distribution
    if np.ptp(draws) == 0:
        return observed, n_groups, [observed, observed]
    low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    if not (np.isfinite(low) and np.isfinite(high)):  # a jackknife that never varies: the percentile interval
        low, high = (float(x) for x in np.percentile(draws, [2.5, 97.5]))
    return observed, n_groups, [low, high]


def weighted_macro_f1(predicted: np.ndarray, truth: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """`classification_metrics`' macro-F1 (over the labels present in the references or the answers) for each row
    of `weights` (k, n_samples), from 0/1 (n_samples, n_labels) matrices of predicted and true labels."""
    tp, fp, fn = weights @ (predicted * truth), weights @ (predicted * (1 - truth)), weights @ ((1 - predicted) * truth)
    p = np.divide(tp, tp + fp, out=np.zeros_like(tp), where=tp + fp > 0)
    r = np.divide(tp, tp + fn, out=np.zeros_like(tp), where=tp + fn > 0)
    f1 = np.divide(2 * p * r, p + r, out=np.zeros_like(tp), where=p + r > 0)
    present = (tp + fp + fn) > 0
    return (f1 * present).sum(axis=1) / np.maximum(present.sum(axis=1), 1)


LabelPairs = list[tuple[set[str] | None, set[str]]]  # (predicted, true) label sets, one per sample


def label_matrix(sets: list[set[str] | None], labels: list[str]) -> np.ndarray:
    """A 0/1 (len(sets), len(labels)) matrix: row i marks the labels of set i (None: none; unknown labels: left out)."""
    column = {label: j for j, label in enumerate(labels)}
    m = np.zeros((len(sets), len(labels)))
    for i, labels_of_sample in enumerate(sets):
        for label in labels_of_sample or ():
            if label in column:
                m[i, column[label]] = 1.0
    return m


def own_vs_other_items(pairs: LabelPairs, items: list, groups: list, labels: list[str], *, n_boot: int = 2000,
                       seed: int = 0) -> dict:
    """How much the answers owe to their item: their F1 on their own item minus on the other groups' items.

    Sample s answered item `items[s]` (of group `groups[s]`) with `pairs[s]`. `own` is its F1 against its item's
    labels; `other` is its F1 against the items of every other group, averaged within each group and then over the
    groups: the answer moved to acts it was not written for (an act's translations are not other acts). Each group
    weighs the same in both means, so answers that ignore the item (the same label sets whatever the item) score a
    difference of exactly 0, however high their reward, and ones that read it score above 0. `diff` is the
    group-weighted mean of own − other, with a 95% BCa CI resampling groups (`cluster_bootstrap_ci`; the other
    term uses the other groups as they are, not as drawn). The F1 is the grader's set F1 on the labels in
    `labels` (others are left out). Returns `own`, `other`, `diff`, `ci95`, `n_samples`, `n_groups`.
    """
    if not pairs or len(items) != len(pairs) or len(groups) != len(pairs):
        raise ValueError(f"own_vs_other_items needs equal, non-empty inputs, got {len(pairs)} pairs, {len(items)} "
                         f"items and {len(groups)} groups")
    first: dict = {}
    for s, item in enumerate(items):
        first.setdefault(item, s)
    item_rows = list(first.values())
    group_names, sample_group = np.unique(np.asarray([str(g) for g in groups]), return_inverse=True)
    if len(group_names) < 2:
        raise ValueError("own_vs_other_items needs items of at least two groups")
    predicted = label_matrix([p for p, _ in pairs], labels)
    truth = label_matrix([pairs[s][1] for s in item_rows], labels)
    overlap = predicted @ truth.T  # (samples, items): labels in common
    sizes = predicted.sum(axis=1)[:, None] + truth.sum(axis=1)[None, :]
    f1 = np.divide(2 * overlap, sizes, out=np.zeros_like(overlap), where=sizes > 0)
    column = {item: j for j, item in enumerate(first)}
    own = f1[np.arange(len(pairs)), [column[item] for item in items]]
    member = np.zeros((len(item_rows), len(group_names)))  # item → group, each column averaging its items
    member[np.arange(len(item_rows)), sample_group[item_rows]] = 1.0
    by_group = f1 @ (member / member.sum(axis=0))  # (samples, groups): mean F1 on each group's items
    other = (by_group.sum(axis=1) - by_group[np.arange(len(pairs)), sample_group]) / (len(group_names) - 1)
    difference = own - other
    weight = 1.0 / np.bincount(sample_group)[sample_group]  # each group weighs the same

    def mean_difference(weights: np.ndarray) -> np.ndarray:
        return (weights * weight) @ difference / ((weights * weight).sum(axis=1))

    diff, n_groups, ci95 = cluster_bootstrap_ci(mean_difference, groups, n_boot, seed)
    total = weight.sum()
    return {"own": float(weight @ own / total), "other": float(weight @ other / total), "diff": diff, "ci95": ci95,
            "n_samples": len(pairs), "n_groups": n_groups}


def macro_f1_difference(a_pairs: LabelPairs, b_pairs: LabelPairs, groups: list, labels: list[str], *,
                        n_boot: int = 2000, seed: int = 0, method: str = "BCa") -> dict:
    """Macro-F1 of predictions `a` minus that of `b` on the same samples, with a 95% bootstrap CI clustered by group
    (`cluster_bootstrap_ci`; `method` "percentile" for `benchmarks/ci_coverage.py`'s comparison).

    `a_pairs[i]` and `b_pairs[i]` are sample i's (predicted, true) label sets under each predictor (the same true
    set) and `groups[i]` its group. Each macro-F1 is `classification_metrics`' (over the labels that occur in the
    references or in that predictor's answers). Macro-F1 is not a mean over samples, so every bootstrap draw
    recomputes both from the label counts of the resampled groups. Returns `diff`, `ci95`, `n_samples`,
    `n_groups`, `n_boot`, `seed`.
    """
    if not a_pairs or len(a_pairs) != len(b_pairs) or len(groups) != len(a_pairs):
        raise ValueError(f"macro_f1_difference needs equal, non-empty inputs, got {len(a_pairs)}, {len(b_pairs)} "
                         f"pairs and {len(groups)} groups")
    if any(ta != tb for (_, ta), (_, tb) in zip(a_pairs, b_pairs)):
        raise ValueError("macro_f1_difference: the two predictors were not scored on the same samples")
    truth = label_matrix([t for _, t in a_pairs], labels)
    predicted_a, predicted_b = label_matrix([p for p, _ in a_pairs], labels), label_matrix([p for p, _ in b_pairs],
                                                                                           labels)

    def difference(weights: np.ndarray) -> np.ndarray:
        return weighted_macro_f1(predicted_a, truth, weights) - weighted_macro_f1(predicted_b, truth, weights)

    diff, n_groups, ci95 = cluster_bootstrap_ci(difference, groups, n_boot, seed, method=method)
    return {"diff": diff, "ci95": ci95, "n_samples": len(a_pairs), "n_groups": n_groups, "n_boot": n_boot,
            "seed": seed}


def paired_difference(base_item_rewards, tuned_item_rewards, groups, *, n_boot: int = 2000, seed: int = 0) -> dict:
    """The mean of `tuned - base` over the same items, with a 95% bootstrap CI clustered by group.

    `base_item_rewards[i]` and `tuned_item_rewards[i]` are item i's mean reward over runs under each model, and
    `groups[i]` its group (EuroVoc: its act, shared by the act's translations). The bootstrap resamples whole
    groups with replacement, so items that move together (translations of one act) count as one draw, not
    many; the CI is the BCa interval of the resampled item-weighted mean differences (`cluster_bootstrap_ci`).
    Returns `diff`, `ci95`, `n_items`, `n_groups`, `n_boot`, `seed` and `excludes_zero` (the CI lies wholly
    above or below 0). With a single group the CI collapses to the difference itself: read `n_groups`.
    """
    base = np.asarray(base_item_rewards, dtype=float)
    tuned = np.asarray(tuned_item_rewards, dtype=float)
    if base.shape != tuned.shape or base.ndim != 1 or len(groups) != len(base):
        raise ValueError(f"paired_difference needs equal-length 1-D inputs, got {base.shape}, {tuned.shape} "
                         f"and {len(groups)} groups")
    if len(base) == 0:
        raise ValueError("paired_difference needs at least one item")
    diffs = tuned - base
    _, n_groups, (low, high) = cluster_bootstrap_ci(lambda weights: weights @ diffs / weights.sum(axis=1), groups,
                                                     n_boot, seed)
    return {"diff": float(diffs.mean()), "ci95": [low, high], "n_items": int(len(diffs)), "n_groups": n_groups,
            "n_boot": n_boot, "seed": seed, "excludes_zero": low > 0 or high < 0}
