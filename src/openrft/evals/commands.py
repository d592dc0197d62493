"""`openrft eval`: evaluate models and checkpoints with the task's own grader, prompts and response_format."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

console = Console()


def eval_command(
    model: list[str] = typer.Option(["default"], "--model", "-m", help="model(s): default, a HF dir, a .gguf, a "
                                    "checkpoint dir, an ft:… name, or a remote model name with --base-url"),
    task: Optional[str] = typer.Option(None, help="a task (see `openrft data tasks`); default: the EuroVoc task"),
    data: Optional[list[Path]] = typer.Option(None, help="a JSONL file of rows instead of a task's split; give it "
                                              "again for variants of the same items (compared side by side)"),
    prompt: Optional[list[str]] = typer.Option(None, "--prompt", help="a prompt variant of the task (see `openrft "
                                               "data tasks`); give it again to compare variants side by side"),
    grader: Optional[Path] = typer.Option(None, help="grader JSON (default: the task's)"),
    response_format: Optional[Path] = typer.Option(None, help="response_format JSON (default: the task's)"),
    split: str = typer.Option("validation", help="the task split to evaluate"),
    limit: Optional[int] = typer.Option(None, help="evaluate only the first N rows"),
    runs: int = typer.Option(3, "--runs", "-k", help="samples per item (variance study)"),
    max_tokens: int = typer.Option(96, help="new tokens per sample"),
    temperature: float = typer.Option(1.0),
    top_p: float = typer.Option(1.0),
    seed: int = typer.Option(0),
    reasoning_effort: Optional[str] = typer.Option(None, help="low / medium / high"),
    base_url: Optional[str] = typer.Option(None, help="an OpenAI-compatible endpoint to evaluate"),
    api_key: Optional[str] = typer.Option(None, envvar="OPENRFT_EVAL_API_KEY"),
    out: Optional[Path] = typer.Option(None, help="output folder (default $OPENRFT_HOME/evals/<time>)"),
    compare_dirs: Optional[list[Path]] = typer.Option(None, "--compare", help="compare saved eval runs instead"),
    text_baseline: bool = typer.Option(False, "--text-baseline", help="also score a text classifier (TF-IDF + "
                                       "logistic regression) fitted on the task's training split, each prompt "
                                       "variant's own rows: the baseline to beat before fine-tuning"),
):
    """Evaluate one or more models; print reward, noise, P/R/F1 and baselines; save output items and plots."""
    from openrft import paths
    from openrft.evals import compare, comparison_table, load_eval, run_eval
    from openrft.evals.compare import comparison_plots

    if compare_dirs:
        results = [load_eval(d) for d in compare_dirs]
        console.print(comparison_table(compare(results)))
        written = comparison_plots(results, Path(compare_dirs[0]).parent / "comparison")
        console.print(f"plots: {', '.join(str(p) for p in written)}")
        return

    if text_baseline and (data or split == "train"):  # refused before any row is loaded
        raise typer.BadParameter("--text-baseline fits on a task's training split and scores another split: give "
                                 "--task (not --data) and leave --split at validation or test")
    variants, grader_spec, fmt, labels, train_rows, task_name, group_key = _dataset(task, data, grader,
                                                                                   response_format, split, prompt,
                                                                                   text_baseline)
    from openrft.engines import SamplingParams, get_engine

    params = SamplingParams(n=runs, temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=seed,
                            response_format=fmt, reasoning_effort=reasoning_effort)
    out_root = out or paths.evals_dir() / time.strftime("%Y%m%d-%H%M%S")
    results = []
    for name in model:
        engine = get_engine(name, base_url=base_url, api_key=api_key)
        for variant, rows in variants.items():
            rows = rows[:limit] if limit else rows
            parts = ([_slug(name)] if len(model) > 1 else []) + ([_slug(variant)] if len(variants) > 1 else [])
            out_dir = out_root.joinpath(*parts)
            label = f"{name} ({variant})" if len(variants) > 1 else name
            result = run_eval(rows, engine=engine, grader=grader_spec, params=params, runs=runs, out_dir=out_dir,
                              name=label, train_rows=train_rows and train_rows[variant], labels=labels, seed=seed,
                              group_key=group_key, text_baseline=text_baseline)
            results.append(result)
            console.print(summary_table(result.summary,
                                        title=f"{label} on {task_name} ({len(rows)} items × {runs} runs)"))
            console.print(f"saved: {out_dir} (output_items.jsonl, summary.json, plots/, index.html)")
    if len(results) > 1:
        console.print(comparison_table(compare(results)))
        comparison_plots(results, out_root / "comparison")


def summary_table(summary: dict, title: str = "") -> Table:
    r = summary["reward"]
    table = Table("figure", "value", title=title)
    table.add_row("mean reward [95% CI]", f"{r['mean']:.3f} [{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}]")
    table.add_row("run-to-run std", f"{r['run_to_run_std']:.4f}")
    table.add_row("headroom (best − mean)", f"{r['headroom']:.3f}")
    table.add_row("zero-signal items", f"{r['zero_signal_share']:.2f}")
    if summary.get("pass_rate") is not None:
        table.add_row(f"pass rate (≥ {summary['pass_threshold']})", f"{summary['pass_rate']:.3f}")
    table.add_row("parse errors", f"{summary['errors']['sample_parse_error_rate']:.3f}")
    table.add_row("grader errors", json.dumps(summary["errors"]["by_kind"]) or "{}")
    table.add_row("tokens answer / reasoning",
                  f"{summary['tokens']['answer_mean']:.1f} / {summary['tokens']['reasoning_mean']:.1f}")
    table.add_row("sampling s / sample", f"{summary['latency']['per_sample_s']:.3f}")
    if "classification" in summary:
        c = summary["classification"]
        for avg in ("micro", "macro"):
            table.add_row(f"{avg} P / R / F1", " / ".join(f"{c[avg][k]:.3f}" for k in ("precision", "recall", "f1")))
        if c.get("other_items"):  # 0 for answers that ignore the item (evals.metrics.own_vs_other_items)
            o = c["other_items"]
            table.add_row("F1 own − other items [95% CI]",
                          f"{o['diff']:+.3f} [{o['ci95'][0]:+.3f}, {o['ci95'][1]:+.3f}]")
        for name, b in summary.get("baselines", {}).items():
            m, a = b["classification"]["micro"], b["classification"].get("macro")
            table.add_row(f"baseline {name}: reward | micro P / R / F1 | macro F1",
                          f"{b['reward']['mean']:.3f} | {m['precision']:.3f} / {m['recall']:.3f} / {m['f1']:.3f} | "
                          + (f"{a['f1']:.3f}" if a else "—"))
    return table


def _dataset(task, data, grader, response_format, split, prompts, text_baseline=False):
    """The rows of each variant ({name: rows}: one per prompt variant or per data file, the same items in each),
    the grader, response_format, label space, training rows of each variant (for baselines; None for files), the
    name and the group key (rows that belong together, for the comparison's clustered CI) of a task or of files.
    The training rows are rendered with each variant's prompt only for `text_baseline` (the classifier reads the
    prompts; the model-free baselines read only the labels, the same in every variant)."""
    from openrft.data import load_rows
    from openrft.tasks import TaskError, default_task, get_task

    if data and prompts:
        raise typer.BadParameter("--prompt chooses a task's prompt variants; with --data give one file per variant")
    t = get_task(task) if task else (default_task() if not data else None)
    if data:
        variants = {str(path): load_rows(path) for path in data}
        ids = [[row.get("id") for row in rows] for rows in variants.values()]
        if len(variants) > 1 and any(i != ids[0] for i in ids[1:]):
            raise typer.BadParameter("the --data files must hold the same items (the same ids in the same order)")
        train_rows = None
    else:
        if prompts and not t.prompts:
            raise typer.BadParameter(f"task {t.name} has no prompt variants")
        try:
            variants = {p: t.rows(split, prompt=p) for p in prompts} if prompts else {"default": t.rows(split)}
        except TaskError as exc:
            raise typer.BadParameter(str(exc)) from exc
        if text_baseline and prompts:
            train_rows = {p: t.rows("train", prompt=p) for p in prompts}
        else:
            shared = t.rows("train")
            train_rows = {name: shared for name in variants}
    grader_spec = json.loads(Path(grader).read_text()) if grader else (t.grader if t else None)
    if grader_spec is None:
        raise typer.BadParameter("--grader is required with --data and no --task")
    fmt = json.loads(Path(response_format).read_text()) if response_format else (t.response_format if t else None)
    first = next(iter(variants.values()))
    labels = t.labels if t else _label_space(fmt, first)
    group_key = t.group_key if t else ("celex_id" if first and all("celex_id" in row for row in first) else None)
    return variants, grader_spec, fmt, labels, train_rows, (t.name if t else ", ".join(variants)), group_key


def _label_space(fmt: dict | None, rows: list[dict]) -> list[str] | None:
    """The labels P/R/F1 are scored over for rows that carry a `labels` list: the response_format's enum for
    `labels` when it has one (the whole label space), else every label the rows name; None for other rows."""
    from openrft.data.labels import label_set

    found = label_set(rows, "labels")
    if found is None:
        return None
    schema = ((fmt or {}).get("json_schema") or {}).get("schema") or {}
    enum = (((schema.get("properties") or {}).get("labels") or {}).get("items") or {}).get("enum")
    return list(enum) if enum else found


def _slug(name: str) -> str:
    """A folder name for a model name or path: its last 80 safe characters, never hidden (no leading dot)."""
    slug = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name.strip("/"))[-80:]
    return slug.lstrip("._-") or "model"
