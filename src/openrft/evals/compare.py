"""Side-by-side comparison of eval runs (models, checkpoints, baselines) with a noise test."""

from __future__ import annotations

from pathlib import Path

from rich.table import Column, Table

from openrft.evals.metrics import difference_vs_noise
from openrft.evals.plots import precision_recall_plot, variance_plot


def compare(results: list) -> list[dict]:
    """One row per run: reward, noise, P/R/F1, and the difference to the first run with its significance."""
    rows = []
    reference = results[0].summary["reward"]
    for index, result in enumerate(results):
        s = result.summary
        row = {"name": s.get("name"), "model": s.get("model"), "runs": s.get("runs"),
               "reward": s["reward"]["mean"], "run_to_run_std": s["reward"].get("run_to_run_std"),
               "ci95": s["reward"].get("ci95")}
        if "classification" in s:
            row.update({f"micro_{k}": s["classification"]["micro"][k] for k in ("precision", "recall", "f1")})
        if index > 0:
            row.update({f"vs_first_{k}": v for k, v in difference_vs_noise(reference, s["reward"]).items()})
        rows.append(row)
    baselines = results[0].summary.get("baselines") or {}
    for name, b in baselines.items():
        rows.append({"name": f"baseline:{name}", "model": "-", "runs": b["reward"].get("runs"),
                     "reward": b["reward"]["mean"], "run_to_run_std": b["reward"].get("run_to_run_std"),
                     "ci95": b["reward"].get("ci95"),
                     **{f"micro_{k}": b["classification"]["micro"][k] for k in ("precision", "recall", "f1")}})
    return rows


def comparison_table(rows: list[dict]) -> Table:
    # run names are long (paths, baselines): fold them, never cut them
    table = Table(Column("run", overflow="fold"), "reward", "±run std", "P", "R", "F1", "Δ vs first", "beyond noise?",
                  title="comparison")
    for row in rows:
        sig = row.get("vs_first_significant")
        table.add_row(str(row["name"]), _f(row["reward"]), _f(row.get("run_to_run_std")), _f(row.get("micro_precision")),
                      _f(row.get("micro_recall")), _f(row.get("micro_f1")), _f(row.get("vs_first_diff"), signed=True),
                      "" if sig is None else ("yes" if sig else "no") + f" ({row.get('vs_first_rule')})")
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
