"""Side-by-side comparison of eval runs (models, checkpoints, baselines) with a paired, clustered CI.

Runs over the same items are compared item by item: the difference to the first run comes with a 95%
bootstrap CI that resamples whole groups (EuroVoc: acts, whose translations move together), and is called
significant when that CI excludes 0. Runs over different items fall back to the run-to-run noise rule.
"""

from __future__ import annotations

from pathlib import Path

from rich.table import Column, Table

from openrft.evals.metrics import difference_vs_noise, paired_difference
from openrft.evals.plots import precision_recall_plot, variance_plot

AVERAGES = ("micro", "macro")


def compare(results: list) -> list[dict]:
    """One row per run: reward, noise, micro and macro P/R/F1, and the difference to the first run.

    Against the first run: `vs_first_diff` and `vs_first_significant` from the paired, group-clustered
    bootstrap (`vs_first_ci95`, `vs_first_n_items`, `vs_first_n_groups`) when both runs cover the same items,
    else from `difference_vs_noise`; `vs_first_rule` says which.
    """
    rows = []
    first = results[0].summary
    for index, result in enumerate(results):
        s = result.summary
        row = {"name": s.get("name"), "model": s.get("model"), "runs": s.get("runs"),
               "reward": s["reward"]["mean"], "run_to_run_std": s["reward"].get("run_to_run_std"),
               "ci95": s["reward"].get("ci95"), **_prf(s.get("classification"))}
        if index > 0:
            row.update({f"vs_first_{k}": v for k, v in versus(first, s).items()})
        rows.append(row)
    baselines = first.get("baselines") or {}
    for name, b in baselines.items():
        rows.append({"name": f"baseline:{name}", "model": "-", "runs": b["reward"].get("runs"),
                     "reward": b["reward"]["mean"], "run_to_run_std": b["reward"].get("run_to_run_std"),
                     "ci95": b["reward"].get("ci95"), **_prf(b.get("classification"))})
    return rows


def versus(first: dict, other: dict) -> dict:
    """`other` minus `first` (two eval summaries): paired and clustered by group on the same items, else the
    run-to-run noise rule."""
    paired = paired_items(first, other)
    if paired is None:
        return difference_vs_noise(first["reward"], other["reward"])
    base, tuned, groups = paired
    d = paired_difference(base, tuned, groups)
    return {"diff": d["diff"], "ci95": d["ci95"], "n_items": d["n_items"], "n_groups": d["n_groups"],
            "significant": d["excludes_zero"], "rule": "paired 95% CI by group"}


def paired_items(first: dict, other: dict) -> tuple[list[float], list[float], list[str]] | None:
    """Per-item mean rewards of two summaries and the items' groups, when both cover the same items (same
    `index` and `id`, in any order); None otherwise. Items without a recorded `group` are their own group."""
    a = {(it.get("index"), it.get("id")): it for it in first.get("items") or []}
    b = {(it.get("index"), it.get("id")): it for it in other.get("items") or []}
    if not a or a.keys() != b.keys():
        return None
    keys = list(a)
    groups = [a[k].get("group") or f"item={k[0]}:{k[1]}" for k in keys]
    return [a[k]["mean"] for k in keys], [b[k]["mean"] for k in keys], groups


def _prf(classification: dict | None) -> dict:
    if not classification:
        return {}
    return {f"{avg}_{k}": classification[avg][k] for avg in AVERAGES if avg in classification
            for k in ("precision", "recall", "f1")}


def comparison_table(rows: list[dict]) -> Table:
    """Reward, micro P / R / F1, macro F1 and the difference to the first run with its 95% CI (or noise rule)."""
    # run names are long (paths, baselines): fold them, never cut them
    table = Table(Column("run", overflow="fold"), "reward ± run std", "micro P / R / F1", "macro F1",
                  "Δ vs first [95% CI]", "significant?", title="comparison")
    rules = []
    for row in rows:
        sig = row.get("vs_first_significant")
        delta = _f(row.get("vs_first_diff"), signed=True)
        if row.get("vs_first_ci95"):
            low, high = row["vs_first_ci95"]
            delta += f" [{low:+.3f}, {high:+.3f}]"
        rule = row.get("vs_first_rule")
        if row.get("vs_first_n_groups") is not None:
            assert rule is not None  # `versus` sets the rule together with n_groups
            rule += f", {row['vs_first_n_items']} items of {row['vs_first_n_groups']} groups"
        if rule and rule not in rules:
            rules.append(rule)
        micro = " / ".join(_f(row.get(f"micro_{k}")) for k in ("precision", "recall", "f1"))
        table.add_row(str(row["name"]), f"{_f(row['reward'])} ± {_f(row.get('run_to_run_std'))}", micro,
                      _f(row.get("macro_f1")), delta, "" if sig is None else ("yes" if sig else "no"))
    if rules:
        table.caption = "significant? " + "; ".join(rules)
    return table


def comparison_plots(results: list, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    points = []
    for r in results:
        if "classification" in r.summary:
            m = r.summary["classification"]["micro"]
            points.append((r.summary.get("name", "model"), m["precision"], m["recall"]))
    for name, b in (results[0].summary.get("baselines") or {}).items():
        m = b["classification"]["micro"]
        points.append((f"baseline:{name}", m["precision"], m["recall"]))
    written = [variance_plot([r.summary for r in results], out_dir / "variance_compare.png")]
    if points:
        written.append(precision_recall_plot(points, out_dir / "precision_recall_compare.png"))
    return written


def _f(x, signed: bool = False) -> str:
    if x is None:
        return "—"
    return f"{x:+.3f}" if signed else f"{x:.3f}"
