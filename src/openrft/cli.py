"""The `openrft` command line: one Typer app, thin over the library's functions."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="openrft: reinforcement fine-tuning of open-weight models on your own hardware.")
console = Console()


@app.callback()
def main() -> None:
    """openrft: reinforcement fine-tuning of open-weight models on your own hardware."""


@app.command()
def models(prepare: bool = typer.Option(True, help="convert the embedded model into the cache if needed")):
    """List the models openrft can use without a download, preparing the embedded default."""
    from openrft import models as registry

    if prepare:
        try:
            registry.resolve_model("default")
        except registry.ModelError as exc:
            console.print(f"[red]error[/]: {exc}")
            raise typer.Exit(1) from None
    table = Table("name", "model", "prepared", "path", "source")
    for row in registry.list_models():
        table.add_row(row["name"], row["model"], "yes" if row["prepared"] else "no", row["path"], row["source"])
    console.print(table)


# --- commands defined next to the code they drive (one line each) ---
from openrft.evals.commands import eval_command  # noqa: E402

app.command("eval")(eval_command)

from openrft.service.commands import serve  # noqa: E402

app.command("serve")(serve)
from openrft.training.commands import train_command  # noqa: E402

app.command("train")(train_command)

from openrft.data.commands import data_app  # noqa: E402

app.add_typer(data_app, name="data")

from openrft.dashboard.commands import dashboard, report  # noqa: E402

app.command("dashboard")(dashboard)
app.command("report")(report)

from openrft.export import export_command  # noqa: E402

app.command("export")(export_command)


@app.command()
def demo(full: bool = typer.Option(False, "--full", help="every training row (SFT one epoch, RFT job_full.yaml: "
                                                          "hours on a CPU)"),
         long: bool = typer.Option(False, "--long", help="one epoch over the 192 balanced training rows for SFT and "
                                                          "for each RFT job (48 steps each)"),
         max_steps: int = typer.Option(None, help="cap the steps of every training stage"),
         held_out: int = typer.Option(48, min=0, help="records of whole unseen acts on which every stage is scored "
                                                     "(0: none, with --rft-only only)"),
         seeds: int = typer.Option(1, "--seeds", min=1, help="repeat the training stages for N seeds (seed, seed+1, "
                                                             "…); the base-model evals are shared"),
         seed: int = typer.Option(None, "--seed", help="the training seed (the first one with --seeds; default: the "
                                                       "job file's)"),
         out: str = typer.Option(None, "--out", help="output folder (default $OPENRFT_HOME/demos/<time>-workflow; "
                                                     "with --rft-only as before)"),
         rft_only: bool = typer.Option(False, "--rft-only", help="the earlier demo: RFT alone, its best validation "
                                                                 "checkpoint against the base model")):
    """The whole workflow on the embedded defaults (EuroVoc, F1 grader, structured output): base model, best
    prompt, SFT, RFT and SFT→RFT scored on the same held-out acts, beside the model-free baselines."""
    from pathlib import Path

    if full and long:
        raise typer.BadParameter("--full and --long are two different runs: give one")
    output_dir = Path(out) if out else None
    if not rft_only and held_out < 1:
        raise typer.BadParameter("--held-out: the workflow scores every stage on held-out acts; give 1 or more")
    if rft_only:
        from openrft.demo import run_demo, run_seeds

        if seeds > 1:
            summary = run_seeds(seeds, seed=seed, full=full, long=long, output_dir=output_dir, max_steps=max_steps,
                                held_out=held_out)
            if summary["failed_seeds"] or not summary["n_seeds"]:
                raise typer.Exit(1)
            return
        verdict = run_demo(full=full, long=long, output_dir=output_dir, max_steps=max_steps, held_out=held_out,
                           seed=seed)
        if verdict.get("status") != "succeeded":
            raise typer.Exit(1)
        return
    from openrft.training.spec import load_job_body
    from openrft.workflow import BUDGETS, EXAMPLES, run_workflow

    budget = "full" if full else "long" if long else "quick"
    first = seed if seed is not None else int(load_job_body(EXAMPLES / BUDGETS[budget].rft_job).get("seed", 0))
    summary = run_workflow(budget=budget, seeds=[first + i for i in range(seeds)], output_dir=output_dir,
                           held_out=held_out, max_steps=max_steps)
    if summary["verdict"]["failed"]:
        raise typer.Exit(1)


from openrft.graders.commands import grade_command  # noqa: E402

app.command("grade")(grade_command)

from openrft.doctor.commands import doctor_command  # noqa: E402

app.command("doctor")(doctor_command)

from openrft.engines.commands import sample as sample_command  # noqa: E402

app.command("sample")(sample_command)
