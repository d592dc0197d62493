"""`openrft data ...`: check, split, balance, describe and export RFT datasets (thin over openrft.data/tasks)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import NoReturn, Optional

import typer
from rich.console import Console
from rich.table import Table

from openrft.errors import EXIT_BAD_INPUT, InputError

data_app = typer.Typer(no_args_is_help=True, add_completion=False,
                       help="Check, split, balance, describe and export RFT datasets (OpenAI JSONL).")
console = Console(soft_wrap=True)  # long paths and reasons stay on one line (greppable)
errors = Console(stderr=True, soft_wrap=True)


def _fail(message: str) -> NoReturn:
    """Refuse the input: the command line prints `error: <message>` (escaped) and exits 2 (`openrft.cli`)."""
    raise InputError(message)


def _print_problems(problems) -> None:
    for problem in problems:
        console.print(str(problem), markup=False, highlight=False, soft_wrap=True)


def _load(path: Path, **kwargs) -> list[dict]:
    from openrft.data import DatasetError, load_rows

    try:
        return load_rows(path, **kwargs)
    except DatasetError as exc:
        _print_problems(exc.problems)
        _fail(f"{len(exc.problems)} problem(s) in {path}: fix them first (openrft data check {path})")


@data_app.command("check")
def check(file: Path = typer.Argument(..., help="the JSONL file to check"),
          grader: Path = typer.Option(None, help="grader JSON: every {{ item.x }} it reads must be in every row"),
          against: Path = typer.Option(None, help="the other file of the pair (e.g. validation): no row in both"),
          group_key: str = typer.Option(None, help="with --against: a group (e.g. celex_id) must not be in both"),
          allow_duplicates: bool = typer.Option(False, help="accept repeated rows (a deliberately balanced file)"),
          method: str = typer.Option("auto", help="the rows' format: reinforcement, supervised, dpo, or auto (told "
                                                  "by the first row's shape)")):
    """List every problem of a fine-tuning JSONL file (file:line: field: reason); exit 2 if there is any."""
    from openrft.data import check_file, read_jsonl
    from openrft.data.formats import METHODS, detect_method

    if method != "auto" and method not in METHODS:
        _fail(f"--method {method!r}: expected one of auto, {', '.join(METHODS)}")
    rows = read_jsonl(file)[0]
    if method == "auto":
        method = detect_method(rows[0][1]) if rows else "reinforcement"
    problems = check_file(file, grader=grader, against=against, group_key=group_key, allow_duplicates=allow_duplicates,
                          method=method)
    if problems:
        _print_problems(problems)
        errors.print(f"[red]{len(problems)} problem(s)[/] in {file} (checked as {method} rows)", highlight=False)
        raise typer.Exit(EXIT_BAD_INPUT)
    console.print(f"[green]ok[/]: {file}: {len(rows)} rows, no problems (checked as {method} rows)", highlight=False)


@data_app.command("split")
def split(file: Path = typer.Argument(..., help="the JSONL file to split"),
          out_dir: Path = typer.Option(..., help="where train.jsonl and validation.jsonl go"),
          group_key: Optional[str] = typer.Option(None, help="rows sharing this field stay together (default: "
                                                             "celex_id "
                                                   "when the rows have it, else none)"),
          stratify: Optional[str] = typer.Option(None, help="label field to stratify on (default: labels when "
                                                            "present; "
                                                  "'none' to split without labels)"),
          valid_fraction: float = typer.Option(0.2, help="fraction of groups that go to validation"),
          seed: int = typer.Option(0, help="seed of the split")):
    """Split a file into train/validation: grouped, label-stratified, reproducible from the seed."""
    from openrft.data import SplitError, split_rows, write_rows
    from openrft.data.labels import imbalance_ratio, label_counts

    rows = _load(file)
    if group_key is None:
        group_key = "celex_id" if rows and all("celex_id" in row for row in rows) else None
    if stratify is None:
        stratify = "labels" if rows and all("labels" in row for row in rows) else None
    elif stratify.lower() == "none":
        stratify = None
    try:
        train, validation = split_rows(rows, group_key=group_key, stratify=stratify, valid_fraction=valid_fraction,
                                       seed=seed)
    except (SplitError, KeyError) as exc:
        _fail(str(exc))
    write_rows(train, out_dir / "train.jsonl")
    write_rows(validation, out_dir / "validation.jsonl")
    table = Table("split", "rows", "groups", *(["imbalance ratio"] if stratify else []),
                  title=f"group key: {group_key or '(each row)'}, stratified on: {stratify or '(nothing)'}, "
                        f"seed {seed}")
    for name, part in (("train", train), ("validation", validation)):
        groups = len({json.dumps(row[group_key]) for row in part}) if group_key else len(part)
        extra = [f"{imbalance_ratio(label_counts(part, stratify)):.1f}"] if stratify else []
        table.add_row(name, str(len(part)), str(groups), *extra)
    console.print(table)
    console.print(f"wrote {out_dir / 'train.jsonl'} and {out_dir / 'validation.jsonl'}", highlight=False)


@data_app.command("balance")
def balance(file: Path = typer.Argument(..., help="the training JSONL file"),
            out: Path = typer.Option(..., help="the balanced JSONL file to write"),
            label_key: str = typer.Option("labels", help="the reference field holding the labels"),
            max_repeats: float = typer.Option(4.0, help="at most this many copies of a row (and at least a "
                                                        "1/max_repeats chance to keep it)"),
            seed: int = typer.Option(0, help="seed of the sampling and the shuffle"),
            png: Path = typer.Option(None, help="also plot the statistics before and after into this PNG")):
    """Write a balanced, shuffled copy of a training file and show the statistics before and after."""
    from openrft.data import balance_rows, dataset_stats, plot_stats, stats_tables, write_rows

    rows = _load(file)
    try:
        balanced = balance_rows(rows, label_key=label_key, seed=seed, max_repeats=max_repeats)
    except (KeyError, ValueError) as exc:
        _fail(str(exc))
    write_rows(balanced, out)
    before = dataset_stats(rows, label_key=label_key)
    after = dataset_stats(balanced, label_key=label_key)
    for table in stats_tables(before, after):
        console.print(table)
    console.print(f"imbalance ratio {before['imbalance_ratio']:.1f} -> {after['imbalance_ratio']:.1f}; wrote {out} "
                  f"({len(balanced)} rows; it repeats rows on purpose: check it with --allow-duplicates)",
                  highlight=False)
    if png:
        console.print(f"plot: {plot_stats(png, before, after, title=f'{file.name}: balanced')}", highlight=False)


@data_app.command("stats")
def stats(file: Path = typer.Argument(..., help="the JSONL file to describe"),
          png: Path = typer.Option(None, help="plot the statistics into this PNG"),
          label_key: str = typer.Option("labels", help="the reference field holding the labels"),
          tokens: bool = typer.Option(True, help="count prompt tokens with the embedded model's tokenizer"),
          allow_duplicates: bool = typer.Option(True, help="describe files with repeated rows (balanced files)")):
    """Label frequencies, imbalance ratio, labels per row and prompt token lengths: a table and a PNG."""
    from openrft.data import dataset_stats, plot_stats, stats_tables

    rows = _load(file, allow_duplicates=allow_duplicates)
    tokenizer = None
    if tokens:
        from openrft.models import load_tokenizer

        with console.status("loading the tokenizer"):
            tokenizer = load_tokenizer("default")
    with console.status(f"counting {len(rows)} rows"):
        figures = dataset_stats(rows, label_key=label_key, tokenizer=tokenizer)
    for table in stats_tables(figures):
        console.print(table)
    if png:
        console.print(f"plot: {plot_stats(png, figures, title=file.name)}", highlight=False)


@data_app.command("export")
def export(task: str = typer.Argument(..., help="task name (see: openrft data tasks)"),
           out_dir: Path = typer.Option(..., help="where to write the files"),
           balance: bool = typer.Option(True, help="balance the training file (repeats rare-label rows)"),
           seed: int = typer.Option(0, help="seed of the balancing"),
           max_repeats: float = typer.Option(4.0, help="balancing: at most this many copies of a row"),
           option: list[str] = typer.Option(None, "--option", "-o",
                                            help="a task option KEY=VALUE (VALUE as JSON, e.g. max_prompt_tokens=256)"),
           method: str = typer.Option("reinforcement", help="reinforcement (prompts + reference fields) or "
                                      "supervised (each prompt with its reference answer as the assistant message)")):
    """Write a task's train.jsonl, validation.jsonl, grader.json and response_format.json."""
    from openrft.data import DatasetError
    from openrft.tasks import TaskError, export_task, get_task

    options = {}
    for item in option or []:
        key, sep, value = item.partition("=")
        if not sep:
            _fail(f"--option {item!r}: expected KEY=VALUE")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    try:
        chosen = get_task(task)
        with console.status(f"building the rows of {task}"):
            summary = export_task(chosen, out_dir, balance=balance, seed=seed, max_repeats=max_repeats, method=method,
                                  **options)
    except DatasetError as exc:
        _print_problems(exc.problems)
        _fail(f"{len(exc.problems)} problem(s) in the rows of task {task}")
    except TaskError as exc:
        _fail(str(exc))
    table = Table("file", "rows", "imbalance ratio", title=f"task {task}: {chosen.source}")
    ratio = summary.get("imbalance_ratio", {})
    table.add_row("train.jsonl" + (" (balanced)" if "balanced" in summary else ""),
                  str(summary.get("balanced", {}).get("rows", summary["rows"]["train"])),
                  f"{summary['balanced']['imbalance_ratio']:.1f} (from {ratio['train']:.1f})" if "balanced" in summary
                  else (f"{ratio['train']:.1f}" if ratio else "-"))
    table.add_row("validation.jsonl", str(summary["rows"]["validation"]),
                  f"{ratio['validation']:.1f}" if ratio else "-")
    console.print(table)
    console.print(f"wrote {', '.join(summary['files'])} into {out_dir}", highlight=False)


@data_app.command("preferences")
def preferences(eval_run: Path = typer.Argument(..., help="an eval run directory (output_items.jsonl with graded "
                                                       "samples, e.g. `openrft eval --runs 4` or a job's "
                                                       "evals/step-N)"),
                out: Path = typer.Option(..., help="the DPO JSONL file to write"),
                min_gap: float = typer.Option(0.0, help="keep a pair only when the best grade exceeds the worst by "
                                                        "more than this")):
    """DPO pairs from an eval run: per item, its best-graded sample against its worst (ties skipped)."""
    from openrft.data import write_rows
    from openrft.data.preferences import PreferenceError, preference_rows

    try:
        rows, summary = preference_rows(eval_run, min_gap=min_gap)
    except PreferenceError as exc:
        _fail(str(exc))
    if not rows:
        _fail(f"{eval_run}: no item has two samples with different grades ({summary['items']} items, "
              f"{summary['ties']} ties, {summary['single']} with one sample): nothing to prefer")
    write_rows(rows, out)
    console.print(f"wrote {out}: {len(rows)} pairs from {summary['items']} items ({summary['ties']} ties and "
                  f"{summary['single']} items with one sample skipped); mean grade gap {summary['mean_gap']:.3f}",
                  highlight=False)


@data_app.command("tasks")
def tasks():
    """List the ready tasks and whether their data is on this machine."""
    from openrft.tasks import list_tasks

    table = Table("task", "labels", "prompts", "available", "description", "data")
    for info in list_tasks():
        table.add_row(info["name"], str(info["labels"] or "-"), ", ".join(info["prompts"]) or "-",
                      "yes" if info["available"] else "[red]no[/]", info["description"], info["source"])
    console.print(table)
