"""How often the 95% CI of a macro-F1 difference covers the true difference: openrft's interval (BCa) against the
plain percentile one, on synthetic held-out sets shaped like the EuroVoc demo's.

    python benchmarks/ci_coverage.py               # 400 held-out sets per scenario; results/ci_coverage.json
    python benchmarks/ci_coverage.py --reps 50     # a quick run

The demo's target compares the fine-tuned model's macro-F1 with the most-frequent baseline's on 48 held-out acts ×
3 runs, with a 95% bootstrap CI that resamples whole acts (`openrft.evals.metrics.macro_f1_difference`). Macro-F1
is not a mean: a small sample's figure is biased (rare domains have a handful of items) and its bootstrap draws are
skewed. This script measures what that does to the interval.

Each held-out set: 48 acts with 21 labels drawn independently with the EuroVoc held-out prevalences (0.54 for the
most frequent domain down to 0.01); each act answered 3 times by a "model" that names each true label with
probability `tpr` and each other label with probability `fpr` (per prevalence band), against a predictor that
always names the 4 most frequent labels. The true difference is the population one (expected counts). Scenarios:

- `gain`: the model beats the baseline on macro-F1 (true difference +0.091);
- `null`: the model's hit rates scaled down until the true difference is about 0 (+0.001); here the share of
  intervals wholly above the truth is the rate of falsely claiming a gain.

For each set both intervals are computed: `bca` by `macro_f1_difference` itself (what the demo reports) and
`percentile` by the same clustered bootstrap with scipy's percentile interval (what openrft reported before). What is
reported: coverage, the share of intervals wholly below / wholly above the truth, and the point estimate's bias.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from openrft.evals.metrics import macro_f1_difference

RESULTS = Path(__file__).resolve().parent / "results" / "ci_coverage.json"
PREVALENCE = np.array([.54, .52, .50, .48, .21, .17, .17, .17, .125, .125, .125, .10, .08, .06, .04, .04, .04,
                       .02, .01, .01, .01])
LABELS = [f"d{j:02d}" for j in range(len(PREVALENCE))]
BANDS = (PREVALENCE > .4, (PREVALENCE > .1) & (PREVALENCE <= .4), PREVALENCE <= .1)
FPR = np.select(BANDS, [.30, .12, .08])
SCENARIOS = {"gain": (.45, .25, .12), "null": (.243, .135, .065)}  # tpr per band (frequent, middle, rare)
TOP = np.zeros(len(PREVALENCE))
TOP[:4] = 1.0


def population_macro_f1(tpr: np.ndarray, fpr: np.ndarray) -> float:
    tp, fp, fn = PREVALENCE * tpr, (1 - PREVALENCE) * fpr, PREVALENCE * (1 - tpr)
    return float(np.where(tp > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1e-12), 0).mean())


def sets(matrix: np.ndarray) -> list[set[str]]:
    return [{LABELS[j] for j in np.flatnonzero(row)} for row in matrix]


def one_set(rng: np.random.Generator, tpr: np.ndarray, acts: int, runs: int, n_boot: int, rep: int) -> dict:
    truth = np.repeat((rng.random((acts, len(LABELS))) < PREVALENCE).astype(float), runs, axis=0)
    model = np.where(truth == 1, rng.random(truth.shape) < tpr, rng.random(truth.shape) < FPR).astype(float)
    top = np.tile(TOP, (len(truth), 1))
    codes = np.repeat(np.arange(acts), runs)
    true_sets = sets(truth)
    a_pairs, b_pairs = list(zip(sets(model), true_sets)), list(zip(sets(top), true_sets))
    bca, percentile = (macro_f1_difference(a_pairs, b_pairs, codes.tolist(), LABELS, n_boot=n_boot, seed=rep,
                                           method=method) for method in ("BCa", "percentile"))
    return {"estimate": bca["diff"], "bca": bca["ci95"], "percentile": percentile["ci95"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=400, help="held-out sets per scenario")
    parser.add_argument("--acts", type=int, default=48)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--n-boot", type=int, default=2000, help="bootstrap draws per interval (the demo's)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    console = Console()
    began = time.perf_counter()
    results = {}
    for name, rates in SCENARIOS.items():
        tpr = np.select(BANDS, rates)
        truth = population_macro_f1(tpr, FPR) - population_macro_f1(TOP, TOP)
        rng = np.random.default_rng(0)
        draws = [one_set(rng, tpr, args.acts, args.runs, args.n_boot, rep) for rep in range(args.reps)]
        row: dict = {"tpr_by_band": list(rates), "true_difference": truth,
                     "estimate_bias": float(np.mean([d["estimate"] for d in draws]) - truth)}
        for method in ("bca", "percentile"):
            lows, highs = (np.array([d[method][i] for d in draws]) for i in (0, 1))
            row[method] = {"coverage": float(np.mean((lows <= truth) & (truth <= highs))),
                           "wholly_below": float(np.mean(highs < truth)),
                           "wholly_above": float(np.mean(lows > truth)),
                           "mean_width": float(np.mean(highs - lows))}
        results[name] = row
    table = Table("scenario", "truth", "bias", "CI", "covers", "below", "above", "width",
                  title=f"95% CI of the macro-F1 difference: {args.reps} held-out sets of {args.acts} "
                        f"acts x {args.runs} runs per scenario")
    for name, row in results.items():
        for method in ("bca", "percentile"):
            r = row[method]
            table.add_row(name, f"{row['true_difference']:+.3f}", f"{row['estimate_bias']:+.3f}", method,
                          f"{r['coverage']:.3f}", f"{r['wholly_below']:.3f}", f"{r['wholly_above']:.3f}",
                          f"{r['mean_width']:.3f}")
    console.print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"reps": args.reps, "acts": args.acts, "runs": args.runs, "n_boot": args.n_boot,
                                    "seconds": time.perf_counter() - began, "results": results}, indent=2))
    console.print(f"-> {args.out}")


if __name__ == "__main__":
    main()
