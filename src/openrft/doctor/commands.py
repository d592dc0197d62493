"""`openrft doctor JOB`: check a job for RFT readiness and print each verdict with its reason."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from openrft.doctor.checks import duration
from openrft.errors import EXIT_FAILED

console = Console()
COLOURS = {"ok": "green", "warn": "yellow", "stop": "bold red"}


def doctor_command(
    job: Path = typer.Argument(..., help="the job file (OpenAI create-job body, YAML or JSON)"),
    rows: int = typer.Option(8, "--rows", "-n", min=1,
                             help="training rows to sample (× the job's samples per prompt)"),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON instead of tables"),
):
    """Check a job before training: reward signal, grader, labels, errors, and its time on this machine.

    Exit status 0 when no check says stop, 1 when one does, 2 when the job or its data cannot be used.
    """
    from openrft.doctor.report import diagnose

    status = Console(stderr=True, quiet=as_json)
    report = diagnose(job, rows=rows, progress=not as_json, log=lambda m: status.print(f"[dim]doctor:[/] {m}"))
    if as_json:
        print(json.dumps(report, indent=2, default=str))
    else:
        console.print(report_table(report))
        if report.get("estimate"):
            console.print(estimate_table(report["estimate"]))
        verdict = report["verdict"]
        console.print(f"verdict: [{COLOURS[verdict]}]{verdict}[/] ({duration(report['elapsed_s'])})")
    if report["verdict"] == "stop":
        raise typer.Exit(EXIT_FAILED)


def report_table(report: dict) -> Table:
    """One row per check: name, coloured verdict, key figure, reason."""
    title = f"openrft doctor: {report.get('job') or 'job'}"
    if report.get("rows"):
        title += f" ({report['model']}, {report['rows']} rows × {report['group_size']} samples, " \
                 f"max_tokens {report['max_tokens']})"
    table = Table("check", "verdict", "value", "reason", title=title, show_lines=True)
    for check in report["checks"]:
        colour = COLOURS[check["verdict"]]
        table.add_row(check["check"], f"[{colour}]{check['verdict']}[/]", show_value(check["value"]), check["reason"])
    return table


def estimate_table(estimate: dict) -> Table:
    step = estimate["per_step_s"]
    tokens = estimate["tokens"]
    table = Table("figure", "value", title=f"estimate on {estimate['device']}")
    table.add_row("total time", duration(estimate["total_s"]))
    table.add_row("steps × time per step", f"{estimate['total_steps']} × {duration(step['total'])}")
    for key in ("sampling", "grading", "training"):
        table.add_row(f"  {key} per step", duration(step[key]))
    table.add_row("validations × time each", f"{estimate['validations']} × {duration(estimate['validation_s'])}")
    table.add_row("tokens sampled (completion)", f"{tokens['sampled']:,.0f}")
    table.add_row("tokens of prompts", f"{tokens['prompt']:,.0f}")
    table.add_row("tokens trained on", f"{tokens['trained']:,.0f}")
    return table


def show_value(value) -> str:
    """A check's value in a table cell: numbers rounded, small dicts as key=value."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, dict):
        if "total_s" in value:
            return duration(value["total_s"])
        parts = [f"{k}={show_value(v)}" for k, v in value.items() if not isinstance(v, (dict, list))]
        return "\n".join(parts[:4]) or "-"
    return str(value)
