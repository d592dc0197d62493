"""The `openrft` command line: one Typer app, thin over the library's functions.

Errors: a subcommand that meets an `OpenRFTError` (a bad file, a model that cannot be found, an export that cannot
be done...) lets it rise; `OpenRFTGroup` catches it here, in one place, prints `error: <message>` on stderr and exits
with status 2. A subcommand that wants to say more (every problem of a data file, OpenAI's error object) or to exit
otherwise catches its error itself.
"""

from __future__ import annotations

from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from openrft.errors import EXIT_BAD_INPUT, EXIT_FAILED, OpenRFTError


def exit_with_error(exc: OpenRFTError) -> NoReturn:
    """Print `error: <message>` on stderr (the message as it is: no markup, no wrapping) and exit with status 2."""
    Console(stderr=True, soft_wrap=True, highlight=False).print(f"[red]error[/]: {escape(str(exc))}")
    raise typer.Exit(EXIT_BAD_INPUT)


class OpenRFTGroup(TyperGroup):
    """The root command: runs the subcommand, and turns an OpenRFTError that it raises into one error line."""

    def invoke(self, ctx: Any):  # click's Context (typer vendors click: its class is private)
        try:
            return super().invoke(ctx)
        except OpenRFTError as exc:
            exit_with_error(exc)


app = typer.Typer(cls=OpenRFTGroup, no_args_is_help=True, add_completion=False,
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
        registry.resolve_model("default")  # a ModelError: one error line and exit 2 (OpenRFTGroup)
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
         long: bool = typer.Option(False, "--long", help="one epoch over 192 training rows (every act, then "
                                                          "translations) for SFT and each RFT job (48 steps each)"),
         max_steps: int = typer.Option(None, help="cap the steps of every training stage"),
         held_out: int = typer.Option(None, min=0, help="records of whole unseen acts on which every stage is "
                                                       "scored (default: one of every act that no job trains or "
                                                       "validates on; 48 with --rft-only, where 0 is none)"),
         seeds: int = typer.Option(1, "--seeds", min=1, help="repeat the training stages for N seeds (seed, seed+1, "
                                                             "…); the base-model evals are shared"),
         seed: int = typer.Option(None, "--seed", help="the training seed (the first one with --seeds; default: the "
                                                       "job file's)"),
         out: str = typer.Option(None, "--out", help="output folder (default $OPENRFT_HOME/demos/<time>-workflow; "
                                                     "with --rft-only as before)"),
         rft_only: bool = typer.Option(False, "--rft-only", help="the earlier demo: RFT alone, its best validation "
                                                                 "checkpoint against the base model"),
         equal_cpu: bool = typer.Option(False, "--equal-cpu", help="also train RFT alone for about the CPU time "
                                                                   "of SFT and SFT→RFT together (the steps measured "
                                                                   "per seed) and pair the two"),
         sft_epochs: int = typer.Option(None, "--sft-epochs", min=1, help="epochs of the SFT stage (default: the "
                                                                         "budget's, 3 quick, 1 with --long/--full)")):
    """The whole workflow on the embedded defaults (EuroVoc, F1 grader, structured output): base model, best
    prompt, SFT, RFT and SFT→RFT scored on the same held-out acts, beside the model-free baselines."""
    from pathlib import Path

    if full and long:
        raise typer.BadParameter("--full and --long are two different runs: give one")
    output_dir = Path(out) if out else None
    if not rft_only and held_out is not None and held_out < 1:
        raise typer.BadParameter("--held-out: the workflow scores every stage on held-out acts; give 1 or more")
    if rft_only:
        from openrft.demo import HELD_OUT_ROWS, run_demo, run_seeds

        held_out = HELD_OUT_ROWS if held_out is None else held_out

        if equal_cpu or sft_epochs is not None:
            raise typer.BadParameter("--equal-cpu and --sft-epochs are the workflow's: leave out --rft-only")
        if seeds > 1:
            summary = run_seeds(seeds, seed=seed, full=full, long=long, output_dir=output_dir, max_steps=max_steps,
                                held_out=held_out)
            if summary["failed_seeds"] or not summary["n_seeds"]:
                raise typer.Exit(EXIT_FAILED)
            return
        verdict = run_demo(full=full, long=long, output_dir=output_dir, max_steps=max_steps, held_out=held_out,
                           seed=seed)
        if verdict.get("status") != "succeeded":
            raise typer.Exit(EXIT_FAILED)
        return
    from openrft.spec import load_job_body
    from openrft.workflow import BUDGETS, EXAMPLES, run_workflow

    budget = "full" if full else "long" if long else "quick"
    first = seed if seed is not None else int(load_job_body(EXAMPLES / BUDGETS[budget].rft_job).get("seed", 0))
    summary = run_workflow(budget=budget, seeds=[first + i for i in range(seeds)], output_dir=output_dir,
                           held_out=held_out, max_steps=max_steps, equal_cpu=equal_cpu, sft_epochs=sft_epochs)
    if summary["verdict"]["failed"]:
        raise typer.Exit(EXIT_FAILED)


from openrft.graders.commands import grade_command  # noqa: E402

app.command("grade")(grade_command)

from openrft.doctor.commands import doctor_command  # noqa: E402

app.command("doctor")(doctor_command)

from openrft.engines.commands import sample as sample_command  # noqa: E402

app.command("sample")(sample_command)
