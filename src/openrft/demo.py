"""`openrft demo`: the end-to-end RFT demo on the embedded defaults, and its honest verdict.

It runs `examples/eurovoc/job.yaml` (`job_long.yaml` with `--long`, `job_full.yaml` with `--full`): the
EuroVoc task (real EU acts when the shared data folder is present, the offline thesaurus task otherwise), the
embedded model, the F1 grader, the strict labels response_format. Step 0 validates the base model; every
validation is an eval run with `eval_samples` runs per item. At the end it compares the base model, the best
checkpoint and the model-free baselines (their label statistics from the whole training file) on the same
validation set, and says whether the gain exceeds twice the base model's run-to-run standard deviation and
whether it beats the most-frequent-labels baseline.

The best checkpoint is chosen by its validation reward, so its validation figure is the maximum of several
noisy measurements and overstates it. The demo therefore ends with a held-out comparison: the base model and
the chosen checkpoint evaluated (same grader, prompt, response_format and runs per item) on validation rows
that no validation step used, which is the figure the verdict stands on.
"""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from openrft.paths import REPO_ROOT

EXAMPLES = REPO_ROOT / "examples" / "eurovoc"
HELD_OUT_ROWS = 32  # validation rows the trainer never saw, for the final base-vs-checkpoint comparison


def run_demo(full: bool = False, long: bool = False, output_dir: Path | None = None, max_steps: int | None = None,
             held_out: int = HELD_OUT_ROWS) -> dict:
    from openrft.training import create_job, run_job
    from openrft.training.spec import load_job_body

    console = Console()
    job_file = EXAMPLES / ("job_full.yaml" if full else "job_long.yaml" if long else "job.yaml")
    body = load_job_body(job_file)
    if output_dir:
        body.setdefault("openrft", {})["output_dir"] = str(output_dir)
    if max_steps:
        body.setdefault("openrft", {})["max_steps"] = max_steps
    job = create_job(body)
    run_dir = Path(job["openrft"]["run_dir"])
    console.rule(f"[bold]openrft demo[/]: {job['openrft'].get('task')} with {job['model']}")
    console.print(f"job {job['id']}  run dir {run_dir}  ({job_file.name})")
    job = run_job(run_dir)
    verdict = summarize_run(run_dir, console)
    if job["status"] == "succeeded" and held_out:
        verdict["held_out"] = held_out_comparison(run_dir, verdict["best_step"], rows=held_out, console=console)
    (run_dir / "verdict.json").write_text(json.dumps(verdict, indent=2))
    return verdict


def summarize_run(run_dir: Path, console: Console | None = None) -> dict:
    """Base model (step 0) vs the best validation step vs baselines, from the run's own eval runs."""
    from openrft.evals import load_eval
    from openrft.training import load_job

    console = console or Console()
    job = load_job(run_dir)
    evals = sorted((p for p in (run_dir / "evals").glob("step-*") if (p / "summary.json").exists()),
                   key=lambda p: int(p.name.split("-")[1]))
    if not evals:
        console.print("no validation runs were recorded")
        return {"status": job["status"]}
    results = {int(p.name.split("-")[1]): load_eval(p).summary for p in evals}
    base_step = min(results)
    best_step = max((s for s in results if s != base_step), key=lambda s: results[s]["reward"]["mean"], default=base_step)
    base, best = results[base_step], results[best_step]
    table = Table("validation", "reward (F1)", "run-to-run std", "micro P", "micro R", "micro F1",
                  title=f"{job['openrft'].get('task') or 'task'}: {base['reward']['n_items']} validation items × "
                        f"{base.get('runs')} runs")

    def row(name, s):
        c = s.get("classification", {}).get("micro", {})
        table.add_row(name, f"{s['reward']['mean']:.3f}", f"{s['reward'].get('run_to_run_std', 0):.4f}",
                      *(f"{c[k]:.3f}" if c else "—" for k in ("precision", "recall", "f1")))

    row(f"base model (step {base_step})", base)
    row(f"best checkpoint (step {best_step})", best)
    for name, b in (base.get("baselines") or {}).items():
        c = b["classification"]["micro"]
        table.add_row(f"baseline: {name}", f"{b['reward']['mean']:.3f}", f"{b['reward'].get('run_to_run_std', 0):.4f}",
                      f"{c['precision']:.3f}", f"{c['recall']:.3f}", f"{c['f1']:.3f}")
    console.print(table)
    verdict = {"status": job["status"], "base_step": base_step, "best_step": best_step,
               "base_reward": base["reward"]["mean"], "best_reward": best["reward"]["mean"],
               **_judge(base, best, "validation", console),
               "zero_signal_share_mean": _mean_train(run_dir, "zero_signal_share"),
               "fine_tuned_model": job.get("fine_tuned_model")}
    report = run_dir / "report" / "report.html"
    if report.exists():
        console.print(f"report: {report}")
    return verdict


def _judge(base: dict, tuned: dict, what: str, console: Console) -> dict:
    """The verdict on two eval summaries of the same rows: does `tuned` gain more than twice `base`'s run-to-run
    std, and does it beat the most-frequent-labels baseline graded on those rows? Printed as one line."""
    gain = tuned["reward"]["mean"] - base["reward"]["mean"]
    noise = base["reward"].get("run_to_run_std", 0.0)
    most_frequent = (base.get("baselines") or {}).get("most_frequent", {}).get("reward", {}).get("mean")
    verdict = {"gain": gain, "base_run_to_run_std": noise, "gain_exceeds_2x_noise": gain > 2 * noise,
               "most_frequent_baseline_reward": most_frequent,
               "beats_most_frequent_baseline": most_frequent is not None and tuned["reward"]["mean"] > most_frequent}
    console.print(f"{what}: gain {gain:+.3f} vs 2× base run-to-run std {2 * noise:.4f}: "
                  + ("[green]beyond noise[/]" if verdict["gain_exceeds_2x_noise"] else "[yellow]within noise[/]")
                  + (f"; most-frequent-labels baseline {most_frequent:.3f}: "
                     + ("[green]beaten[/]" if verdict["beats_most_frequent_baseline"] else "[yellow]not beaten[/]")
                     if most_frequent is not None else ""))
    return verdict


def _mean_train(run_dir: Path, key: str) -> float | None:
    from openrft.training import read_events

    values = [e["data"]["train"][key] for e in read_events(run_dir)
              if e.get("type") == "metrics" and "train" in (e.get("data") or {})]
    return sum(values) / len(values) if values else None


def held_out_comparison(run_dir: Path, step: int, *, rows: int = HELD_OUT_ROWS, console: Console | None = None) -> dict:
    """Base model vs the checkpoint of `step` on `rows` validation rows that the run's validations never used."""
    from openrft.data import load_rows
    from openrft.engines.transformers import TransformersEngine
    from openrft.evals import compare, run_eval
    from openrft.evals.compare import comparison_table
    from openrft.training import load_job
    from openrft.training.job import spec_of
    from openrft.training.loop import eval_labels, reasoning_effort, sampling_params, subset

    console = console or Console()
    job = load_job(run_dir)
    spec, hp = spec_of(job), job["method"]["reinforcement"]["hyperparameters"]
    ext, rl, seed = spec.openrft, spec.method.reinforcement, hp["resolved"]["seed"]
    valid = load_rows(job["openrft"]["validation_path"])
    seen = subset(valid, ext.max_valid_rows, seed)
    used = {id(r) for r in seen}
    unseen = subset([r for r in valid if id(r) not in used], rows, seed + 1)
    if not unseen:
        console.print("no validation rows are left over for a held-out comparison")
        return {}
    all_train_rows = load_rows(job["openrft"]["training_path"])  # the baselines' label statistics, as in training
    train_rows = subset(all_train_rows, ext.max_train_rows, seed)
    params = sampling_params(ext, rl.response_format, reasoning_effort(hp), 1, seed + 1)
    labels = eval_labels(ext, train_rows + seen)  # the label set the run's own validations scored
    checkpoint = run_dir / "checkpoints" / f"step-{step}"
    results = []
    for name, model in (("base model", spec.model), (f"checkpoint step {step}", str(checkpoint))):
        engine = TransformersEngine.from_name(model, device=ext.device)
        results.append(run_eval(unseen, engine=engine, grader=rl.grader, runs=hp["eval_samples"], params=params,
                                out_dir=run_dir / "held_out" / ("base" if model == spec.model else f"step-{step}"),
                                name=name, train_rows=all_train_rows, labels=labels, label_key=ext.label_key or "labels",
                                seed=seed))
    rows_ = compare(results)
    console.print(comparison_table(rows_))
    base, tuned = results[0].summary, results[1].summary
    verdict = {"rows": len(unseen), "runs": hp["eval_samples"], "base_reward": base["reward"]["mean"],
               "checkpoint_reward": tuned["reward"]["mean"],
               **_judge(base, tuned, f"held out ({len(unseen)} unseen rows × {hp['eval_samples']} runs)", console),
               "significant": rows_[1].get("vs_first_significant")}
    for key, summary in (("base", base), ("checkpoint", tuned)):
        if "classification" in summary:
            verdict[f"{key}_micro"] = summary["classification"]["micro"]
    return verdict
