"""Eval figures: the variance study, the reward histogram and precision against recall, plus a small HTML page."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def variance_plot(summaries: list[dict], path: Path) -> Path:
    """Items sorted by mean reward, each with its min–max range: the gap between an item's mean and its best
    sample is the headroom that training can take."""
    fig, ax = plt.subplots(figsize=(9, 4))
    for summary in summaries:
        items = sorted(summary["items"], key=lambda it: it["mean"])
        x = range(len(items))
        ax.vlines(x, [it["min"] for it in items], [it["max"] for it in items], alpha=0.35, linewidth=3)
        ax.plot(x, [it["mean"] for it in items], "o", markersize=3, label=f"{summary.get('name', 'model')} mean")
        ax.plot(x, [it["max"] for it in items], "_", markersize=6, color="black")
    ax.set_xlabel("items, sorted by mean reward")
    ax.set_ylabel("reward (bar: min–max over runs)")
    headroom = summaries[0]["reward"].get("headroom")
    ax.set_title(f"variance study (k={summaries[0].get('runs')} runs; headroom best−mean = {headroom:.3f})"
                 if headroom is not None else "variance study")
    ax.legend(loc="upper left", fontsize=8)
    return _save(fig, path)


def histogram_plot(summary: dict, rewards: list[float], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(rewards, bins=20, range=(min(0.0, min(rewards, default=0)), max(1.0, max(rewards, default=1))))
    ax.set_xlabel("reward")
    ax.set_ylabel("samples")
    ax.set_title(f"reward histogram ({summary.get('name', '')}, mean {summary['reward'].get('mean', 0):.3f})")
    return _save(fig, path)


def precision_recall_plot(points: list[tuple[str, float, float]], path: Path) -> Path:
    """Micro precision against micro recall, one point per model, checkpoint or baseline."""
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, precision, recall in points:
        marker = "s" if name.startswith("baseline") else "o"
        ax.plot(recall, precision, marker, markersize=8, label=name)
        ax.annotate(name, (recall, precision), fontsize=7, xytext=(4, 4), textcoords="offset points")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("recall (micro)")
    ax.set_ylabel("precision (micro)")
    ax.set_title("precision vs recall")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def pr_points(summary: dict) -> list[tuple[str, float, float]]:
    points = []
    if "classification" in summary:
        micro = summary["classification"]["micro"]
        points.append((summary.get("name", "model"), micro["precision"], micro["recall"]))
    for name, baseline in (summary.get("baselines") or {}).items():
        micro = baseline["classification"]["micro"]
        points.append((f"baseline:{name}", micro["precision"], micro["recall"]))
    return points


def write_eval_plots(result, out_dir: Path) -> list[Path]:
    plots = out_dir / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    summary = result.summary
    written = []
    if summary["items"]:
        written.append(variance_plot([summary], plots / "variance.png"))
        rewards = [item.reward for item in result.output_items if item.reward is not None]
        written.append(histogram_plot(summary, rewards, plots / "reward_hist.png"))
    points = pr_points(summary)
    if points:
        written.append(precision_recall_plot(points, plots / "precision_recall.png"))
    write_html(result, out_dir, written)
    return written


def write_html(result, out_dir: Path, images: list[Path]) -> Path:
    """A small self-contained page: the headline figures, the plots and the first output items."""
    s = result.summary
    rows = [("mean reward", _fmt(s["reward"].get("mean"))),
            ("95% CI", ", ".join(_fmt(x) for x in s["reward"].get("ci95", []))),
            ("run-to-run std", _fmt(s["reward"].get("run_to_run_std"))),
            ("headroom", _fmt(s["reward"].get("headroom"))),
            ("pass rate", _fmt(s.get("pass_rate"))), ("parse error rate", _fmt(s["errors"]["sample_parse_error_rate"]))]
    if "classification" in s:
        c = s["classification"]
        rows += [("micro P / R / F1", " / ".join(_fmt(c["micro"][k]) for k in ("precision", "recall", "f1"))),
                 ("macro P / R / F1", " / ".join(_fmt(c["macro"][k]) for k in ("precision", "recall", "f1")))]
        for name, b in s.get("baselines", {}).items():
            rows.append((f"baseline {name}: reward / micro F1 / macro F1",
                         f"{_fmt(b['reward']['mean'])} / {_fmt(b['classification']['micro']['f1'])} / "
                         f"{_fmt((b['classification'].get('macro') or {}).get('f1'))}"))
    table = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    imgs = "".join(
        f'<img src="data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}" style="max-width:48%">'
        for p in images)
    items = "".join(
        f"<tr><td>{it.datasource_item_id}</td><td>{it.status}</td><td>{_fmt(it.reward)}</td>"
        f"<td><code>{html.escape(str(it.sample.output[0].content)[:300])}</code></td></tr>"
        for it in result.output_items[:200])
    page = (f"<!doctype html><meta charset=utf-8><title>eval {html.escape(s.get('name', ''))}</title>"
            f"<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:2px 8px;text-align:left}}</style>"
            f"<h1>Eval run: {html.escape(s.get('name', ''))}</h1><p>model {html.escape(str(s.get('model')))}, "
            f"{s['reward'].get('n_items')} items × {s.get('runs')} runs</p><table>{table}</table>{imgs}"
            f"<h2>Output items</h2>"
            f"<table><tr><th>item</th><th>status</th><th>reward</th><th>answer</th></tr>{items}</table>"
            f"<script type=application/json id=summary>{html.escape(json.dumps(s['reward']))}</script>")
    path = out_dir / "index.html"
    path.write_text(page)
    return path


def _fmt(x) -> str:
    return "—" if x is None else f"{x:.3f}" if isinstance(x, float) else str(x)


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
