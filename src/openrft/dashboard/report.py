"""Static reports: the dashboard's charts as PNG files plus one self-contained HTML file.

`build_report(run_dir)` writes `run_dir/report/`: one PNG per chart and `report.html` with the PNGs
inlined (base64), so the file can be mailed, attached to an issue or opened without a server. It draws
the series of `rundata` (the same numbers as the web page); eval-run figures (variance study, reward
histogram, precision vs recall) are drawn by `openrft.evals.plots`, the eval module's own plots.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from matplotlib.figure import Figure

from openrft.dashboard import rundata
from openrft.runs import read_output_items

COLORS = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563"]
NOT_REPORTED = "not reported by this run"
NOT_LABELS = "the grader reports no precision/recall (not a label task)"
NOT_A_RUN = "not a run directory: expected job.json (a job) or summary.json / run.json (an eval run)"


def build_report(run_dir: str | Path, out_dir: str | Path | None = None) -> Path:
    """Write the report of a job or eval run into `out_dir` (default `run_dir/report/`); returns `report.html`."""
    run_dir = Path(run_dir).expanduser().resolve()
    out = Path(out_dir) if out_dir else run_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    if rundata.is_job_dir(run_dir):
        ref = rundata.RunRef(run_dir.name, "job", run_dir)
        view = rundata.job_view(ref)
        charts = job_charts(view, ref, out)
        title = f"openrft job {view['id']}"
        body = _job_html(view)
    elif rundata.is_eval_dir(run_dir):
        ref = rundata.RunRef(run_dir.name, "eval", run_dir)
        view = rundata.eval_view(ref)
        charts = eval_charts(ref, out)
        title = f"openrft eval run {view['name'] or view['id']}"
        body = _eval_html(view)
    else:
        raise rundata.RunDirError(f"{run_dir}: {NOT_A_RUN}")
    page = out / "report.html"
    page.write_text(_page(title, body, charts), encoding="utf-8")
    return page


# --- job charts ----------------------------------------------------------------------------------------

def job_charts(view: dict, ref: rundata.RunRef, out: Path) -> list[tuple[str, Path | str | None]]:
    """Draw every chart of the job page; returns (title, PNG path, or None when the job does not report it).

    A drawing function returns None when it drew, or the reason it could not (shown in the HTML instead).
    """
    s = view["series"]
    steps = s["step"]
    charts: list[tuple[str, Path | str | None]] = []

    def add(title: str, name: str, draw) -> None:
        fig = Figure(figsize=(7.5, 3.6), layout="constrained")
        reason = draw(fig)
        if reason:
            charts.append((title, reason))
            return
        path = out / f"{name}.png"
        fig.savefig(path, dpi=110)
        charts.append((title, path))

    def reward(fig: Figure):
        if not (_has(s["reward"]["train"]) or _has(s["reward"]["valid"])):
            return NOT_REPORTED
        ax = fig.subplots()
        _line(ax, steps, s["reward"]["train"], "train", COLORS[0])
        _line(ax, steps, s["reward"]["valid"], "validation", COLORS[1], marker="o")
        for i, (name, b) in enumerate((view.get("baselines") or {}).items()):
            if b.get("reward") is not None:
                ax.axhline(b["reward"], color=COLORS[7 - i], linestyle="--", linewidth=1, label=f"baseline: {name}")
        warned = [g["step"] for g in view["guards"] if g["step"] in steps]
        if warned:
            at = {x: t if t is not None else v for x, t, v in zip(steps, s["reward"]["train"], s["reward"]["valid"])}
            ax.plot(warned, [at[x] or 0.0 for x in warned], "^", color="#b91c1c", markersize=9, label="guard warning")
        if view["best_step"] is not None:
            ax.plot([view["best_step"]], [view["best_valid_reward"]], "*", color="#d97706", markersize=16,
                    label=f"best checkpoint (step {view['best_step']})")
        _labels(ax, "Reward", "step", "mean reward")

    def graders(fig: Figure):
        if not s["graders"]:
            return NOT_REPORTED
        ax = fig.subplots()
        for i, g in enumerate(s["graders"]):
            color = COLORS[i % len(COLORS)]
            _line(ax, steps, g["train"], f"{g['name']} train", color, linestyle="--")
            _line(ax, steps, g["valid"], f"{g['name']} valid", color, marker="o")
        _labels(ax, "Reward per grader (dashed: train, solid: validation)", "step", "mean reward")

    def pr_steps(fig: Figure):
        pr = s["precision_recall"]
        if not _has(pr["precision"]):
            return NOT_LABELS
        ax = fig.subplots()
        for i, key in enumerate(("precision", "recall", "f1")):
            _line(ax, pr["step"], pr[key], f"micro {key}", COLORS[i], marker="o")
        _line(ax, pr["step"], pr.get("macro_f1") or [], "macro f1", COLORS[2], marker="s", linestyle="--")
        ax.set_ylim(0, 1)
        _labels(ax, "Precision / recall per checkpoint (micro; macro F1 dashed; validation)", "step", "")

    def tokens(fig: Figure):
        t = s["tokens"]
        if not any(_has(v) for v in t.values()):
            return NOT_REPORTED
        ax = fig.subplots()
        for key, color, style in (("train_reasoning", COLORS[0], "-"), ("valid_reasoning", COLORS[0], "--"),
                                  ("train_answer", COLORS[2], "-"), ("valid_answer", COLORS[2], "--")):
            if _has(t[key]):
                _line(ax, steps, t[key], key.replace("_", " "), color, linestyle=style)
        _labels(ax, "Reasoning and answer tokens (mean per sample)", "step", "tokens")

    def duration(fig: Figure):
        keys = [k for k in ("sampling", "training", "eval", "other") if _has(s["timing"][k])]
        if not keys:
            return NOT_REPORTED
        ax = fig.subplots()
        bottom = [0.0] * len(steps)
        for i, key in enumerate(keys):
            values = [v or 0.0 for v in s["timing"][key]]
            ax.bar(steps, values, bottom=bottom, label=key, color=COLORS[i])
            bottom = [b + v for b, v in zip(bottom, values)]
        _labels(ax, "Per-step duration", "step", "seconds")

    def latency(fig: Figure):
        if not s["grader_latency"]:
            return NOT_REPORTED
        ax = fig.subplots()
        for i, g in enumerate(s["grader_latency"]):
            _line(ax, steps, g["train"], f"{g['name']} train", COLORS[i % len(COLORS)], linestyle="--")
            _line(ax, steps, g["valid"], f"{g['name']} valid", COLORS[i % len(COLORS)], marker="o")
        _labels(ax, "Grader latency (mean seconds per sample)", "step", "seconds")

    def errors(fig: Figure):
        kinds = {kind: values for kind, values in s["errors"].items() if any(values)}
        if not kinds:
            return f"no grader errors ({len(s['errors'])} kinds counted)" if s["errors"] else NOT_REPORTED
        ax = fig.subplots()
        bottom = [0.0] * len(steps)
        for i, (kind, values) in enumerate(kinds.items()):
            values = [v or 0.0 for v in values]
            ax.bar(steps, values, bottom=bottom, label=kind, color=COLORS[(i + 1) % len(COLORS)])
            bottom = [b + v for b, v in zip(bottom, values)]
        _labels(ax, "Grader errors by kind (train + validation)", "step", "count")

    def grader_tokens(fig: Figure):
        if not s["grader_tokens"]:
            return "no model graders in this job"
        ax = fig.subplots()
        for i, g in enumerate(s["grader_tokens"]):
            _line(ax, steps, g["prompt"], f"{g['name']} prompt", COLORS[i % len(COLORS)])
            _line(ax, steps, g["completion"], f"{g['name']} completion", COLORS[i % len(COLORS)], linestyle="--")
        _labels(ax, "Grading token usage (model graders)", "step", "tokens")

    def internals(fig: Figure):
        keys = list(s["train"])
        if not keys:
            return NOT_REPORTED
        fig.set_size_inches(10, 2.4 * ((len(keys) + 2) // 3))
        axes = fig.subplots((len(keys) + 2) // 3, 3, squeeze=False).flatten()
        for i, key in enumerate(keys):
            _line(axes[i], steps, s["train"][key], key, COLORS[i % len(COLORS)], marker=".")
            axes[i].set_title(key, fontsize=10)
            axes[i].grid(alpha=0.3)
        for ax in axes[len(keys):]:
            ax.set_visible(False)
        fig.suptitle("RL internals")

    add("Reward", "reward", reward)
    add("Reward per grader", "reward_per_grader", graders)
    add("Precision / recall per checkpoint", "precision_recall_steps", pr_steps)
    charts.append(("Precision vs recall", _pr_tradeoff(view, out) or NOT_LABELS))
    add("Reasoning and answer tokens", "tokens", tokens)
    add("Per-step duration", "step_duration", duration)
    add("Grader latency", "grader_latency", latency)
    add("Grader errors", "grader_errors", errors)
    add("Grading token usage", "grader_tokens", grader_tokens)
    add("RL internals", "rl_internals", internals)
    charts.append(("Validation variance study: first vs best checkpoint", _validation_variance(view, ref, out)))
    return charts


def _pr_tradeoff(view: dict, out: Path) -> Path | None:
    """Precision against recall, one point per checkpoint plus the baselines (the eval module's plot)."""
    from openrft.evals.plots import precision_recall_plot

    points = [(f"step {e['step']}" if e["step"] else "base model (step 0)", e["precision"], e["recall"])
              for e in view["step_evals"]
              if e["precision"] is not None and e["recall"] is not None]
    if not points:
        return None
    points += [(f"baseline:{name}", b["precision"], b["recall"]) for name, b in (view.get("baselines") or {}).items()
               if b.get("precision") is not None and b.get("recall") is not None]
    return precision_recall_plot(points, out / "precision_recall.png")


def _validation_variance(view: dict, ref: rundata.RunRef, out: Path) -> Path | None:
    """The variance study of the first validation run and of the best checkpoint's (the eval module's plot)."""
    from openrft.evals.plots import variance_plot

    chosen = []
    evals = {e["step"]: e for e in view["step_evals"]}
    best = view["best_step"] if view["best_step"] in evals else None
    for step in dict.fromkeys(s for s in (min(evals, default=None), best) if s is not None):
        summary = rundata.read_json(ref.path / "evals" / f"step-{step}" / "summary.json")
        if summary.get("items") and rundata.reward_stats(summary).get("mean") is not None:
            chosen.append({**summary, "name": f"step {step}"})
    return variance_plot(chosen, out / "validation_variance.png") if chosen else None


# --- eval charts ---------------------------------------------------------------------------------------

def eval_charts(ref: rundata.RunRef, out: Path) -> list[tuple[str, Path | str | None]]:
    """The eval page's charts, drawn by the eval module: variance study, reward histogram, precision vs recall."""
    from openrft.evals.plots import histogram_plot, pr_points, precision_recall_plot, variance_plot

    summary = rundata.read_json(ref.path / "summary.json")
    rewards = [r for r in (rundata.item_reward(i) for i in read_output_items(ref.path)) if r is not None]
    has_summary = bool(summary.get("items")) and rundata.reward_stats(summary).get("mean") is not None
    points = pr_points(summary) if summary else []
    return [
        ("Variance study", variance_plot([summary], out / "variance.png") if has_summary else None),
        ("Reward histogram", histogram_plot(summary, rewards, out / "reward_histogram.png")
         if has_summary and rewards else None),
        ("Precision vs recall", precision_recall_plot(points, out / "precision_recall.png") if points else NOT_LABELS),
    ]


# --- HTML ----------------------------------------------------------------------------------------------

def _job_html(view: dict) -> str:
    facts = [("status", view["status"]), ("model", view["model"]), ("task", view["task"]),
             ("grader", f"{view['grader']['type']} {view['grader']['name'] or ''}"),
             ("steps", f"{view['step']} / {view['total_steps']}"),
             ("best validation reward", f"{_fmt(view['best_valid_reward'])} (step {view['best_step']})"),
             ("fine-tuned model", view["fine_tuned_model"]),
             ("hyperparameters", ", ".join(f"{k}={v}" for k, v in view["hyperparameters"].items()))]
    rows = "".join(
        f"<tr><td>{c['step']}</td><td>{'<b class=best>★ best</b>' if c['best'] else ''}</td>"
        f"<td>{_fmt(c['valid_reward'])}</td><td><code>{html.escape(str(c['model'] or ''))}</code></td></tr>"
        for c in view["checkpoints"])
    guards = "".join(f"<li>step {g['step']}: <b>{html.escape(str(g['check']))}</b> ({html.escape(str(g['verdict']))}): "
                     f"{html.escape(str(g['message']))}</li>" for g in view["guards"])
    guards = f"<h2>Guard warnings</h2><ul>{guards}</ul>" if guards else ""
    checkpoints = (f"<h2>Checkpoints</h2><table><tr><th>step</th><th></th><th>validation reward</th><th>model</th>"
                   f"</tr>{rows}</table>") if rows else ""
    return _facts(facts) + guards + checkpoints + _validation_html(view)


def _validation_html(view: dict) -> str:
    """Each validation run's reward with micro and macro P/R/F1, then the baselines (empty without labels)."""
    evals = [e for e in view.get("step_evals") or [] if e.get("f1") is not None or e.get("macro_f1") is not None]
    if not evals:
        return ""
    keys = ("precision", "recall", "f1", "macro_precision", "macro_recall", "macro_f1")
    rows = "".join(f"<tr><td>{e['step']}</td><td>{_fmt(e['reward_mean'])}</td>"
                   + "".join(f"<td>{_fmt(e.get(k))}</td>" for k in keys) + "</tr>" for e in evals)
    rows += "".join(f"<tr><td>baseline {html.escape(name)}</td><td>{_fmt(b.get('reward'))}</td>"
                    + "".join(f"<td>{_fmt(b.get(k))}</td>" for k in keys) + "</tr>"
                    for name, b in (view.get("baselines") or {}).items())
    head = "".join(f"<th>{h}</th>" for h in ("step", "reward", "micro P", "micro R", "micro F1", "macro P", "macro R",
                                            "macro F1"))
    return f"<h2>Validation: micro and macro precision / recall / F1</h2><table><tr>{head}</tr>{rows}</table>"


def _eval_html(view: dict) -> str:
    facts = [("status", view["status"]), ("model", view["model"]), ("output items", view["n_output_items"]),
             ("runs per item", view["runs"])] + [(name, value) for name, value in view["figures"]]
    return _facts(facts)


def _facts(rows: list[tuple[str, object]]) -> str:
    cells = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td></tr>"
                    for k, v in rows if v is not None)
    return f"<table class=facts>{cells}</table>"


def _page(title: str, body: str, charts: list[tuple[str, Path | str | None]]) -> str:
    figures = []
    for name, path in charts:
        if not isinstance(path, Path):
            figures.append(f"<figure class=absent><figcaption>{html.escape(name)}</figcaption>"
                           f"<p>{html.escape(path or NOT_REPORTED)}</p></figure>")
        else:
            data = base64.b64encode(path.read_bytes()).decode("ascii")
            figures.append(f"<figure><img alt=\"{html.escape(name)}\" src=\"data:image/png;base64,{data}\">"
                           f"<figcaption>{html.escape(name)} <span>({html.escape(path.name)})</span></figcaption>"
                           "</figure>")
    style = ("body{font-family:system-ui,sans-serif;margin:2em;color:#1d2330}table{border-collapse:collapse}"
             "th,td{text-align:left;padding:3px 10px;border-bottom:1px solid #e5e7eb}th{color:#6b7280}"
             ".charts{display:flex;flex-wrap:wrap;gap:1em}figure{margin:0;max-width:48%}figure img{max-width:100%}"
             "figure.absent{color:#6b7280;border:1px dashed #d1d5db;padding:1em}figcaption span{color:#9ca3af}"
             ".best{color:#d97706}")
    return (f"<!doctype html><html lang=en><meta charset=utf-8><title>{html.escape(title)}</title>"
            f"<style>{style}</style><h1>{html.escape(title)}</h1>{body}<h2>Charts</h2>"
            f"<div class=charts>{''.join(figures)}</div></html>")


# --- drawing helpers -----------------------------------------------------------------------------------

def _line(ax, xs: list, ys: list, label: str, color: str, **style) -> None:
    """Plot the points of `ys` that are present (None = the step did not report it)."""
    pts = [(x, y) for x, y in zip(xs, ys) if y is not None]
    if pts:
        ax.plot([p[0] for p in pts], [p[1] for p in pts], label=label, color=color, **style)


def _labels(ax, title: str, xlabel: str, ylabel: str) -> None:
    ax.set_title(title, fontsize=11)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="best")


def _has(values: list) -> bool:
    return any(v is not None for v in values)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.1e}" if 0 < abs(value) < 0.01 else f"{value:.3f}"  # a learning rate of 2e-4 is not 0.000
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return "—" if value is None else str(value)
