"""`openrft demo --rft-only`: the end-to-end RFT demo on the embedded defaults, and its honest verdict. (`openrft
demo` without `--rft-only` runs the whole workflow, `openrft.workflow`, which reuses this module's held-out draw
and its paired, group-clustered verdict `judge`.)

It runs `examples/eurovoc/job.yaml` (`job_long.yaml` with `--long`, `job_full.yaml` with `--full`): the
EuroVoc task (real EU acts when the shared data folder is present, the offline thesaurus task otherwise), the
embedded model, the F1 grader, the strict labels response_format. Step 0 validates the base model; every
validation is an eval run with `eval_samples` runs per item. At the end it compares the base model, the best
checkpoint and the model-free baselines (their label statistics from the whole training file) on the same
validation set.

The best checkpoint is chosen by its validation reward, so its validation figure is the maximum of several
noisy measurements and overstates it. The demo therefore ends with a held-out comparison: the base model and
the chosen checkpoint evaluated (same grader, prompt, response_format and runs per item) on records of groups
of the task's group key (EuroVoc: acts, `celex_id`; one record of each act) that share no group with the
training file or with the validation rows that chose the checkpoint. That is the figure the verdict stands on:

- the held-out gain is the paired difference checkpoint − base over the same rows, with a 95% bootstrap CI
  that resamples whole acts (translations of one act are not independent evidence);
- the gain is called real when its CI lies above 0, and it beats the most-frequent-labels baseline when the
  CI's lower end lies above that baseline's difference to the base model;
- `--seeds N` trains N seeds on the same held-out rows (apart from every seed's validation rows; the base
  model's held-out eval runs once and is shared) and adds the across-seed spread (mean ± std of the gain): a
  gain that holds for one seed's decoding noise need not hold for another training seed.

Every figure says how many records of how many groups it rests on ("48 records of 27 acts").
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from openrft import runs
from openrft.paths import REPO_ROOT

EXAMPLES = REPO_ROOT / "examples" / "eurovoc"
HELD_OUT_ROWS = 48  # records of unseen groups for the final comparison (EuroVoc: one record of each of 48 acts)
GROUP_NOUNS = {"celex_id": "acts"}  # how a figure names the task's groups ("48 records of 27 acts")
MODELS = ("base", "checkpoint", "most_frequent", "random", "every_label")  # the rows of the F1 tables, seeds.json


def records_of(n_records: int, n_groups: int, group_key: str | None) -> str:
    """"48 records of 27 acts": how many rows and how many groups a figure rests on."""
    noun = GROUP_NOUNS.get(group_key or "", f"groups ({group_key})" if group_key else "groups (rows)")
    return f"{n_records} records of {n_groups} {noun}"


def demo_body(*, full: bool = False, long: bool = False, output_dir: Path | None = None,
              max_steps: int | None = None, seed: int | None = None) -> tuple[dict, Path]:
    """The demo's job body (and its job file): the example job with the given overrides."""
    from openrft.spec import load_job_body

    job_file = EXAMPLES / ("job_full.yaml" if full else "job_long.yaml" if long else "job.yaml")
    body = load_job_body(job_file)
    if output_dir:
        body.setdefault("openrft", {})["output_dir"] = str(output_dir)
    if max_steps:
        body.setdefault("openrft", {})["max_steps"] = max_steps
    if seed is not None:
        body["seed"] = seed
    return body, job_file


def run_demo(full: bool = False, long: bool = False, output_dir: Path | None = None, max_steps: int | None = None,
             held_out: int = HELD_OUT_ROWS, seed: int | None = None) -> dict:
    """Train one seed (the job file's unless `seed` is given), then judge it on validation and on held-out
    groups; the verdict is returned and written to the run's `verdict.json`."""
    console = Console()
    run_dir, verdict = train_one(full=full, long=long, output_dir=output_dir, max_steps=max_steps, seed=seed,
                                 console=console)
    if verdict["status"] == "succeeded" and held_out:
        verdict["held_out"] = held_out_comparison(run_dir, verdict["best_step"], rows=held_out, console=console)
    runs.write_json(run_dir / "verdict.json", verdict)
    return verdict


def train_one(*, full: bool, long: bool, output_dir: Path | None, max_steps: int | None, seed: int | None,
              console: Console) -> tuple[Path, dict]:
    """Create and run the demo job for one seed; returns its run dir and its validation verdict."""
    from openrft.dashboard import report_finished_job
    from openrft.training import create_job, run_job

    body, job_file = demo_body(full=full, long=long, output_dir=output_dir, max_steps=max_steps, seed=seed)
    run_dir = Path(create_job(body)["openrft"]["run_dir"])
    job = runs.ResolvedJob.load(run_dir)
    console.rule(f"[bold]openrft demo[/]: {job.options.task} with {job.model}, seed {job.seed}")
    console.print(f"job {job.id}  run dir {run_dir}  ({job_file.name})")
    report_finished_job(run_dir, run_job(run_dir)["status"])
    verdict = {"seed": job.seed, "run_dir": str(run_dir), **summarize_run(run_dir, console)}
    return run_dir, verdict


def run_seeds(n_seeds: int, *, seed: int | None = None, full: bool = False, long: bool = False,
              output_dir: Path | None = None, max_steps: int | None = None, held_out: int = HELD_OUT_ROWS) -> dict:
    """Train `n_seeds` seeds (seed, seed+1, …; default the job file's seed first), each in `<parent>/seed-S`,
    then compare each checkpoint with the base model on the *same* held-out rows (records of groups that none of the
    runs validated on), and aggregate: `seeds.json` and `seeds.png` in the parent folder."""
    from openrft import paths

    console = Console()
    first = seed if seed is not None else demo_body(full=full, long=long)[0].get("seed", 0)
    seeds = [first + i for i in range(n_seeds)]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    parent = Path(output_dir or paths.home() / "demos" / f"{stamp}-seeds-{seeds[0]}-{seeds[-1]}")
    taken = [str(parent / f"seed-{s}") for s in seeds if (parent / f"seed-{s}").exists()]
    if taken:
        raise FileExistsError(f"{', '.join(taken)} already exist: give another output folder (--out)")
    parent.mkdir(parents=True, exist_ok=True)
    console.print(f"openrft demo over {n_seeds} seeds {seeds}: output in {parent}")
    trained = []
    for s in seeds:
        try:
            trained.append(train_one(full=full, long=long, output_dir=parent / f"seed-{s}", max_steps=max_steps,
                                     seed=s, console=console))
        except Exception as exc:  # one seed's crash must not lose the others: it is reported as a failed seed
            console.print(f"[red]seed {s} failed[/]: {type(exc).__name__}: {exc}")
            trained.append((parent / f"seed-{s}", {"seed": s, "status": "failed",
                                                    "error": f"{type(exc).__name__}: {exc}"}))
    excluded: set[str] = set()  # every run's validation groups: one held-out set, disjoint from all of them
    for run_dir, _ in trained:
        excluded |= validation_groups(run_dir)
    verdicts = []
    base_from = None  # the base model is the same for every seed: its held-out eval is run once
    for run_dir, verdict in trained:
        run_dir.mkdir(parents=True, exist_ok=True)
        if verdict["status"] == "succeeded" and held_out:
            console.rule(f"held out: seed {verdict['seed']}")
            verdict["held_out"] = held_out_comparison(run_dir, verdict["best_step"], rows=held_out, console=console,
                                                      exclude_groups=excluded, draw_seed=seeds[0] + 1,
                                                      base_from=base_from)
            if verdict["held_out"] and base_from is None:
                base_from = run_dir / "held_out" / "base"
        runs.write_json(run_dir / "verdict.json", verdict)
        verdicts.append(verdict)
    summary = aggregate_seeds(verdicts)
    summary["output_dir"] = str(parent)
    runs.write_json(parent / "seeds.json", summary)
    if summary["n_seeds"]:
        summary["chart"] = str(seeds_chart(summary, parent / "seeds.png"))
        runs.write_json(parent / "seeds.json", summary)
    print_seeds(summary, console)
    return summary


def summarize_run(run_dir: Path, console: Console | None = None) -> dict:
    """Base model (step 0) vs the best validation step vs baselines, from the run's own eval runs."""
    from openrft.evals import load_eval

    console = console or Console()
    job = runs.ResolvedJob.load(run_dir)
    group_key = job.options.group_key
    evals = sorted((p for p in (run_dir / "evals").glob("step-*") if (p / "summary.json").exists()),
                   key=lambda p: int(p.name.split("-")[1]))
    if not evals:
        console.print("no validation runs were recorded")
        return {"status": job.job.status}
    results = {int(p.name.split("-")[1]): load_eval(p) for p in evals}
    base_step = min(results)
    # the best checkpoint (highest validation reward, the earliest on ties) among the validated steps after the
    # first one, which is the base model's
    best_record = runs.best_checkpoint([c for c in runs.list_checkpoints(run_dir)
                                        if c.step_number != base_step and c.step_number in results])
    best_step = best_record.step_number if best_record is not None else base_step
    base, best = results[base_step], results[best_step]
    groups = item_groups(base, group_key)
    where = records_of(len(groups), len(set(groups.values())), group_key)
    table = Table("validation", "reward ± run std", "micro P / R / F1", "macro P / R / F1", "cut / unparsed",
                  title=f"{job.options.task or 'task'}: validation, {where} × "
                        f"{base.summary.get('runs')} runs", caption="cut: finish_reason length; unparsed: parse error")
    table.add_row(f"base (step {base_step})", *_figures(base.summary))
    table.add_row(f"best (step {best_step})", *_figures(best.summary))
    for name, b in (base.summary.get("baselines") or {}).items():
        table.add_row(name.replace("_", "-"), *_figures(b))
    console.print(table)
    verdict = {"status": job.job.status, "base_step": base_step, "best_step": best_step,
               "base_reward": base.summary["reward"]["mean"], "best_reward": best.summary["reward"]["mean"],
               **judge(base, best, group_key, f"validation ({where}, selection-biased)", console),
               "zero_signal_share_mean": _mean_train(run_dir, "zero_signal_share"),
               "fine_tuned_model": job.job.fine_tuned_model}
    report = run_dir / "report" / "report.html"
    if report.exists():
        console.print(f"report: {report}")
    return verdict


def _figures(summary: dict) -> list[str]:
    """A table row's cells: reward ± run-to-run std, micro and macro P / R / F1, truncated / unparseable shares."""
    c = summary.get("classification") or {}
    prf = [" / ".join(_f(c[avg][k]) for k in ("precision", "recall", "f1")) if avg in c else "—"
           for avg in ("micro", "macro")]
    truncated = (summary.get("tokens") or {}).get("truncated_share")
    unparsed = (summary.get("errors") or {}).get("sample_parse_error_rate")
    shares = "—" if truncated is None and unparsed is None else f"{_f(truncated)} / {_f(unparsed)}"
    return [f"{_f(summary['reward']['mean'])} ± {_f(summary['reward'].get('run_to_run_std'))}", *prf, shares]


def _f(x, digits: int = 3) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def item_groups(result, group_key: str | None) -> dict[tuple, str]:
    """Each evaluated item's group under `group_key`, keyed by (index, id) as in the summary's `items`: from the
    item's row in the run's output items (whatever group key the eval recorded), else the summary's `group`."""
    from openrft.data.splits import group_of

    rows = {item.datasource_item_id: {**item.datasource_item, "messages": item.sample.input}
            for item in result.output_items}
    groups = {}
    for item in result.summary["items"]:
        key = (item.get("index"), item.get("id"))
        row = rows.get(item.get("index"))
        groups[key] = group_of(row, group_key) if row is not None else item.get("group") or f"item={key}"
    return groups


def paired_gain(base_result, tuned_result, group_key: str | None, what: str) -> dict:
    """`tuned − base` over the same rows (`metrics.paired_difference`: diff, ci95 clustered by group, n_items,
    n_groups); `what` names the comparison in the error when the two runs cover different items."""
    from openrft.evals.compare import paired_items
    from openrft.evals.metrics import paired_difference

    base = base_result.summary
    groups = item_groups(base_result, group_key)
    with_groups = {**base, "items": [{**it, "group": groups[(it.get("index"), it.get("id"))]} for it in base["items"]]}
    paired = paired_items(with_groups, tuned_result.summary)
    if paired is None:
        raise ValueError(f"{what}: the two eval runs do not cover the same items")
    return paired_difference(*paired)


def judge(base_result, tuned_result, group_key: str | None, what: str, console: Console) -> dict:
    """The verdict on two eval runs over the same rows: the paired gain `tuned − base` with its 95% CI clustered
    by group; is the CI above 0, and is its lower end above the most-frequent-labels baseline's difference to
    the base model (the baseline graded on the same rows)? Printed as one line."""
    base, tuned = base_result.summary, tuned_result.summary
    d = paired_gain(base_result, tuned_result, group_key, what)
    low, high = d["ci95"]
    most_frequent = (base.get("baselines") or {}).get("most_frequent", {}).get("reward", {}).get("mean")
    mf_diff = None if most_frequent is None else most_frequent - base["reward"]["mean"]
    verdict = {"gain": d["diff"], "gain_ci95": d["ci95"], "n_records": d["n_items"], "n_groups": d["n_groups"],
               "records": records_of(d["n_items"], d["n_groups"], group_key),
               "gain_ci_above_zero": low > 0,
               "base_run_to_run_std": base["reward"].get("run_to_run_std", 0.0),
               "checkpoint_run_to_run_std": tuned["reward"].get("run_to_run_std", 0.0),
               "most_frequent_baseline_reward": most_frequent, "most_frequent_diff": mf_diff,
               "beats_most_frequent_baseline": mf_diff is not None and low > mf_diff}
    line = (f"{what}: gain {d['diff']:+.3f}, 95% CI [{low:+.3f}, {high:+.3f}] clustered by group: "
            + ("[green]above 0[/]" if low > 0 else "[yellow]not above 0[/]"))
    if mf_diff is not None:
        line += (f"; most-frequent-labels baseline {most_frequent:.3f} ({mf_diff:+.3f} vs base): CI lower end "
                 + ("[green]above it[/]" if verdict["beats_most_frequent_baseline"] else "[yellow]not above it[/]"))
    console.print(line)
    return verdict


def _mean_train(run_dir: Path, key: str) -> float | None:
    values = [m.train[key] for m in runs.read_metrics(run_dir) if m.train and key in m.train]
    return sum(values) / len(values) if values else None


def validation_groups(run_dir: Path) -> set[str]:
    """The groups of every row that the run's validations evaluated (read from their output items)."""
    from openrft.data.splits import group_of

    if not runs.is_job_dir(run_dir):
        return set()
    group_key = runs.ResolvedJob.load(run_dir).options.group_key
    groups = set()
    for path in (run_dir / "evals").glob("step-*/output_items.jsonl"):
        for item in runs.read_output_items(path.parent):
            groups.add(group_of({**item.datasource_item, "messages": item.sample.input}, group_key))
    return groups


def held_out_rows(valid: list[dict], train: list[dict], *, rows: int, seed: int, group_key: str | None,
                  exclude_groups: set[str]) -> list[dict]:
    """`rows` records drawn with `seed` from `valid`, spread over as many groups as possible (`group_subset`), and
    sharing no group with `train` or with `exclude_groups` (the validation rows that chose the checkpoint)."""
    from openrft.data.splits import group_subset, groups_in

    return group_subset(valid, rows, seed, group_key, exclude_groups=set(exclude_groups) | groups_in(train, group_key))


def held_out_comparison(run_dir: Path, step: int, *, rows: int = HELD_OUT_ROWS, console: Console | None = None,
                        exclude_groups: set[str] | None = None, draw_seed: int | None = None,
                        base_from: Path | None = None) -> dict:
    """Base model vs the checkpoint of `step` on `rows` records of validation groups that neither the
    training file nor the run's validations (nor `exclude_groups`) contain; drawn with `draw_seed` (default
    the job's seed + 1). `base_from`: a base-model held-out eval of another seed's run, copied instead of
    evaluating the base model again when it covers the same rows with the same model and sampling settings."""
    from openrft.data import load_rows
    from openrft.data.labels import label_set
    from openrft.data.splits import groups_in
    from openrft.engines.transformers import TransformersEngine
    from openrft.evals import compare, load_eval, run_eval
    from openrft.evals.compare import comparison_table

    console = console or Console()
    job = runs.ResolvedJob.load(run_dir)
    seed, group_key, runs_per_item = job.seed, job.options.group_key, job.eval_samples
    if not job.validation_path:
        console.print("the job has no validation file: no held-out comparison")
        return {}
    valid = load_rows(job.validation_path)
    all_train_rows = job.all_train_rows  # the baselines' label statistics, as in training
    seen_groups = validation_groups(run_dir) | set(exclude_groups or ())
    seen = [r for r in valid if groups_in([r], group_key) <= seen_groups]
    unseen = held_out_rows(valid, all_train_rows, rows=rows, seed=seed + 1 if draw_seed is None else draw_seed,
                           group_key=group_key, exclude_groups=seen_groups)
    if not unseen:
        console.print("no validation groups are left over for a held-out comparison")
        return {}
    n_groups = len(groups_in(unseen, group_key))
    where = records_of(len(unseen), n_groups, group_key)
    params = job.sampling_params(1, seed + 1)
    # the label set the run's validations scored
    labels = run_labels(run_dir) or job.options.labels or label_set(all_train_rows + seen, job.options.label_key)
    checkpoint = runs.checkpoint_dir(run_dir, step)
    results = []
    for name, model in (("base model", job.model), (f"checkpoint step {step}", str(checkpoint))):
        if model == job.model and base_from is not None and reusable(base_from, unseen, model, params):
            shutil.copytree(base_from, run_dir / "held_out" / "base", dirs_exist_ok=True)
            results.append(load_eval(run_dir / "held_out" / "base"))
            console.print(f"base model on the held-out rows: reusing {base_from}")
            continue
        engine = TransformersEngine.from_name(model, device=job.options.device)
        results.append(run_eval(unseen, engine=engine, grader=job.grader_spec, runs=runs_per_item, params=params,
                                out_dir=run_dir / "held_out" / ("base" if model == job.model else f"step-{step}"),
                                name=name, train_rows=all_train_rows, labels=labels, label_key=job.label_key,
                                seed=seed, group_key=group_key))
    console.print(comparison_table(compare(results)))
    base, tuned = results[0].summary, results[1].summary
    shares = {"base": _shares(base), "checkpoint": _shares(tuned)}
    table = Table("held out", "truncated (finish_reason length)", "unparseable (parse error)",
                  title=f"answers cut or unparsed: {where} × {runs_per_item} runs")
    for key in ("base", "checkpoint"):
        table.add_row(key, f"{shares[key]['truncated']:.3f}", f"{shares[key]['parse_error']:.3f}")
    console.print(table)
    verdict = {"rows": len(unseen), "groups": n_groups, "group_key": group_key, "runs": runs_per_item,
               "held_out_groups": sorted(groups_in(unseen, group_key)),
               "excluded_groups": {"validation": len(seen_groups),
                                   "training": len(groups_in(all_train_rows, group_key))},
               "base_reward": base["reward"]["mean"], "checkpoint_reward": tuned["reward"]["mean"],
               **judge(results[0], results[1], group_key, f"held out ({where} × {runs_per_item} runs)", console),
               "shares": shares, "f1": f1_figures(base, tuned)}
    for key, summary in (("base", base), ("checkpoint", tuned)):
        if "classification" in summary:
            verdict[f"{key}_micro"] = summary["classification"]["micro"]
            verdict[f"{key}_macro"] = summary["classification"]["macro"]
    return verdict


def reusable(eval_dir: Path, rows: list[dict], model: str, params) -> bool:
    """Does the eval run in `eval_dir` hold `model` on exactly `rows` (by id, in order) with `params`' sampling
    settings (its seed aside)?"""
    summary = runs.read_json(eval_dir / "summary.json")
    if summary is None:
        return False
    wanted = {k: v for k, v in params.__dict__.items() if k not in ("n", "seed")}
    recorded = {k: v for k, v in (summary.get("sampling") or {}).items() if k != "seed"}
    ids = [row.get("id") for row in rows]
    return (summary.get("model") == model and None not in ids and [it.get("id") for it in summary["items"]] == ids
            and json.loads(json.dumps(wanted, default=str)) == json.loads(json.dumps(recorded, default=str)))


def run_labels(run_dir: Path) -> list[str] | None:
    """The label set that the run's first validation scored (its per-label figures), if it recorded one."""
    evals = sorted((run_dir / "evals").glob("step-*/summary.json"), key=lambda p: int(p.parent.name.split("-")[1]))
    if not evals:
        return None
    per_label = ((runs.read_json(evals[0]) or {}).get("classification") or {}).get("per_label")
    return list(per_label) if per_label else None


def _shares(summary: dict) -> dict:
    return {"truncated": summary["tokens"]["truncated_share"],
            "parse_error": summary["errors"]["sample_parse_error_rate"]}


def f1_figures(base: dict, tuned: dict) -> dict:
    """Micro and macro P/R/F1 of the base model, the checkpoint and the base run's baselines (same rows)."""
    sources = {"base": base.get("classification"), "checkpoint": tuned.get("classification"),
               **{name: b.get("classification") for name, b in (base.get("baselines") or {}).items()}}
    return {name: {avg: {k: c[avg][k] for k in ("precision", "recall", "f1")} for avg in ("micro", "macro")}
            for name, c in sources.items() if c}


def aggregate_seeds(verdicts: list[dict]) -> dict:
    """The held-out evidence over seeds (each `verdict` as `run_demo` writes it, with `seed` and `held_out`).

    Per seed: the gain, its clustered CI and its rows. Across seeds: mean ± std (ddof 1) of the gain and of every
    model's micro and macro P/R/F1 and truncated / unparseable shares. The gain holds when every seed's CI lies
    above 0 and the across-seed mean stays above 0 by twice the across-seed std (which needs 2 seeds or more).
    """
    done = [v for v in verdicts if v.get("held_out")]
    per_seed = []
    for v in done:
        h = v["held_out"]
        per_seed.append({"seed": v.get("seed"), "best_step": v.get("best_step"), "gain": h["gain"],
                         "gain_ci95": h["gain_ci95"], "records": h["records"], "n_records": h["n_records"],
                         "n_groups": h["n_groups"], "gain_ci_above_zero": h["gain_ci_above_zero"],
                         "most_frequent_diff": h.get("most_frequent_diff"),
                         "beats_most_frequent_baseline": h.get("beats_most_frequent_baseline"),
                         "shares": h.get("shares"), "f1": h.get("f1"), "held_out_groups": h.get("held_out_groups")})
    summary: dict = {"seeds": [v.get("seed") for v in verdicts], "n_seeds": len(per_seed),
               "failed_seeds": [v.get("seed") for v in verdicts if not v.get("held_out")], "per_seed": per_seed}
    if not per_seed:
        summary["verdict"] = {"gain_holds": False, "text": "no seed produced a held-out comparison"}
        return summary
    gains = np.array([s["gain"] for s in per_seed])
    std = float(gains.std(ddof=1)) if len(gains) > 1 else None
    summary.update({"gain_mean": float(gains.mean()), "gain_std": std,
                    "same_held_out_rows": len({json.dumps(s["held_out_groups"]) for s in per_seed}) == 1,
                    "records": per_seed[0]["records"],
                    "f1": _across(per_seed, "f1", {m: {a: ("precision", "recall", "f1") for a in ("micro", "macro")}
                                                   for m in MODELS}),
                    "shares": _across(per_seed, "shares",
                                      {m: ("truncated", "parse_error") for m in ("base", "checkpoint")})})
    every_ci = all(s["gain_ci_above_zero"] for s in per_seed)
    every_mf = all(s["beats_most_frequent_baseline"] for s in per_seed)
    spread_ok = None if std is None else summary["gain_mean"] - 2 * std > 0
    holds = every_ci and spread_ok is True
    n = len(per_seed)
    text = (f"held-out gain over {n} seed(s): {summary['gain_mean']:+.3f}"
            + (f" ± {std:.3f} (mean ± std across seeds)" if std is not None else " (one seed: no across-seed spread)")
            + f"; 95% CI clustered by group above 0 for {sum(s['gain_ci_above_zero'] for s in per_seed)}/{n} seeds"
            + f"; CI lower end above the most-frequent baseline for "
              f"{sum(bool(s['beats_most_frequent_baseline']) for s in per_seed)}/{n}"
            + ("" if std is None else f"; mean − 2·std = {summary['gain_mean'] - 2 * std:+.3f}")
            + (": the gain holds across seeds" if holds else ": not shown to hold across seeds"))
    summary["verdict"] = {"every_seed_ci_above_zero": every_ci, "every_seed_ci_low_above_most_frequent": every_mf,
                          "mean_minus_2std_above_zero": spread_ok, "gain_holds": holds, "text": text}
    return summary


def _across(per_seed: list[dict], field: str, shape) -> dict:
    """Mean and std (ddof 1; None for one seed) across seeds of every leaf named by `shape` under `field`."""
    def walk(shape, path):
        if isinstance(shape, dict):
            return {k: walk(v, path + [k]) for k, v in shape.items()}
        out = {}
        for leaf in shape:
            values = []
            for s in per_seed:
                node = s.get(field)
                for key in path + [leaf]:
                    node = node.get(key) if isinstance(node, dict) else None
                if node is not None:
                    values.append(node)
            if values:
                out[leaf] = {"mean": float(np.mean(values)),
                             "std": float(np.std(values, ddof=1)) if len(values) > 1 else None, "n": len(values)}
        return out

    return walk(shape, [])


def print_seeds(summary: dict, console: Console) -> None:
    """The per-seed held-out gains, the across-seed P/R/F1 table and the verdict line."""
    if summary["n_seeds"]:
        table = Table("seed", "best step", "gain [95% CI by group]", "most-freq. Δ", "cut base → ckpt",
                      "unparsed base → ckpt", title=f"held-out gain per seed ({summary['records']})",
                      caption="gain and most-freq. Δ: reward minus the base model's on the same rows")
        for s in summary["per_seed"]:
            sh = s.get("shares") or {}
            table.add_row(str(s["seed"]), str(s["best_step"]),
                          f"{s['gain']:+.3f} [{s['gain_ci95'][0]:+.3f}, {s['gain_ci95'][1]:+.3f}]",
                          "—" if s["most_frequent_diff"] is None else f"{s['most_frequent_diff']:+.3f}",
                          *(f"{sh[m][k]:.3f} → {sh['checkpoint'][k]:.3f}" if sh else "—"
                            for m, k in (("base", "truncated"), ("base", "parse_error"))))
        console.print(table)
        f1 = Table("held out", "micro F1", "micro P / R", "macro F1", "macro P / R",
                   title=f"mean ± std over {summary['n_seeds']} seed(s) ({summary['records']})")
        for model in MODELS:
            cells = []
            for avg in ("micro", "macro"):
                figures = summary["f1"].get(model, {}).get(avg, {})
                f, p, r = (figures.get(k) for k in ("f1", "precision", "recall"))
                spread = "" if f is None or f["std"] is None else f" ± {f['std']:.3f}"
                cells.append("—" if f is None else f"{f['mean']:.3f}{spread}")
                cells.append("—" if p is None or r is None else f"{p['mean']:.3f} / {r['mean']:.3f}")
            f1.add_row(model.replace("_", "-"), *cells)
        console.print(f1)
    if summary.get("failed_seeds"):
        console.print(f"[yellow]seeds without a held-out comparison[/]: {summary['failed_seeds']}")
    colour = "green" if summary["verdict"]["gain_holds"] else "yellow"
    console.print(f"[{colour}]{summary['verdict']['text']}[/]")
    if summary.get("output_dir"):
        console.print(f"seeds.json and seeds.png in {summary['output_dir']}")


def seeds_chart(summary: dict, path: Path) -> Path:
    """One PNG: each seed's held-out gain with its clustered 95% CI, the across-seed mean ± std and the
    most-frequent baseline's difference (left); micro and macro F1 of the four models, mean ± std (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    per_seed = summary["per_seed"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    x = np.arange(len(per_seed))
    gains = np.array([s["gain"] for s in per_seed])
    lows = gains - np.array([s["gain_ci95"][0] for s in per_seed])
    highs = np.array([s["gain_ci95"][1] for s in per_seed]) - gains
    left.errorbar(x, gains, yerr=[lows, highs], fmt="o", capsize=5, label="gain, 95% CI clustered by group")
    mf = [s["most_frequent_diff"] for s in per_seed]
    if all(v is not None for v in mf):
        left.plot(x, mf, "s", color="grey", label="most-frequent baseline − base")
    left.axhline(0, color="black", linewidth=0.8)
    left.axhline(summary["gain_mean"], color="tab:green", linestyle="--", label="mean over seeds")
    if summary.get("gain_std"):
        left.axhspan(summary["gain_mean"] - summary["gain_std"], summary["gain_mean"] + summary["gain_std"],
                     color="tab:green", alpha=0.15, label="± std over seeds")
    left.set_xticks(x, [f"seed {s['seed']}" for s in per_seed])
    left.set_xlim(-0.5, len(per_seed) - 0.5)
    left.set_ylabel("held-out reward: checkpoint − base")
    left.set_title(f"held-out gain ({summary['records']})", fontsize=10)
    left.legend(fontsize=7)
    width = 0.38
    for i, avg in enumerate(("micro", "macro")):
        means = [summary["f1"].get(m, {}).get(avg, {}).get("f1", {}).get("mean", np.nan) for m in MODELS]
        stds = [summary["f1"].get(m, {}).get(avg, {}).get("f1", {}).get("std") or 0.0 for m in MODELS]
        right.bar(np.arange(len(MODELS)) + (i - 0.5) * width, means, width, yerr=stds, capsize=3, label=f"{avg} F1")
    right.set_xticks(np.arange(len(MODELS)), [m.replace("_", "-") for m in MODELS])
    right.set_ylim(0, 1)
    right.set_title(f"held-out F1, mean ± std over {summary['n_seeds']} seed(s)", fontsize=10)
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
