"""`diagnose(job)`: is this job ready for RFT? Everything the doctor measures, before a step is paid for.

    data checks ─► label balance as the trainer samples it ─► N training rows (in the trainer's epoch order)
      ─► the policy exactly as the trainer builds it (model, LoRA, engine)
      ─► eval run: the job's grader, response_format, max_tokens, temperature, samples per prompt
      ─► eval run without the response_format (4 rows × 2 samples)
      ─► one timed training step unit ─► the checks of openrft.doctor.checks and the job's estimate

Sampling and grading go through `openrft.evals.run_eval`, the path the trainer's validation uses, so the
figures are the ones the job will see at step 0. The CLI (`openrft doctor`) prints the result; a service
route or dashboard panel can serve the same dict.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from openrft.doctor import checks as C

DEFAULT_ROWS = 8
NO_FORMAT_ROWS = 4  # the run without the response_format is a smaller check: its first rows ...
NO_FORMAT_RUNS = 2  # ... and samples per row


def diagnose(job: str | Path | dict, *, rows: int = DEFAULT_ROWS, progress: bool = True,
             file_resolver: Callable[[str], Path] | None = None, log: Callable[[str], None] | None = None) -> dict:
    """Run every check on a job file or body; returns the report (see `openrft doctor --json`).

    Raises `openrft.spec.JobSpecError` when the job itself does not validate.
    """
    from openrft.data import check_file, dataset_stats, read_jsonl
    from openrft.data.validate import grader_item_fields
    from openrft.spec import parse_job
    from openrft.training.job import resolve_file

    say = log or (lambda _message: None)
    began = time.perf_counter()
    spec = parse_job(job) if isinstance(job, dict) else parse_job(Path(job))
    if spec.method.type != "reinforcement":
        from openrft.spec import JobSpecError

        raise JobSpecError(f"method.type: openrft doctor checks reinforcement jobs (sampling, grading, reward "
                           f"signal); a {spec.method.type} job has no grader to check: use `openrft data check` on "
                           "its files", param="method.type")
    ext, rl = spec.openrft, spec.method.reinforcement
    assert rl is not None  # parse_job requires the block of a reinforcement job
    train_path = resolve_file(spec.training_file, file_resolver, "training_file")
    valid_path = resolve_file(spec.validation_file, file_resolver, "validation_file") if spec.validation_file else None
    report: dict[str, Any] = {"object": "openrft.doctor.report", "job": str(job) if not isinstance(job, dict) else None,
                              "model": spec.model, "task": ext.task, "training_file": str(train_path),
                              "validation_file": str(valid_path) if valid_path else None, "checks": [],
                              "estimate": None}

    # 1. the data, as the trainer will refuse or accept it
    files = [(str(train_path), read_jsonl(train_path)[0])] + ([(str(valid_path), read_jsonl(valid_path)[0])]
                                                              if valid_path else [])
    problems = check_file(train_path) + (check_file(valid_path) if valid_path else [])
    fields, grader_problems = grader_item_fields(rl.grader)
    missing = C.missing_fields(files, fields, grader_problems)
    report["checks"] += [C.data_problems(problems), missing]
    if problems or missing["verdict"] == "stop":  # the trainer would refuse the job: fix the data first
        return _finish(report, began)
    # 2. the trainer's rows (its seeded subsets: whole groups for validation), hyperparameters, and the label
    #    balance of one epoch as the trainer orders it
    from openrft.runs import ResolvedJob
    from openrft.training.job import build_job

    run = ResolvedJob(build_job(spec, job_id="ftjob-doctor", run_dir=None, train_path=train_path,
                                valid_path=valid_path, n_rows=len(files[0][1])))
    hp = run.hyperparameters.to_dict()
    seed, group_size = run.seed, run.group_size
    train_rows = run.train_rows
    label_key = ext.label_key if ext.label_key and all(ext.label_key in r for r in train_rows) else None
    order = run.epoch_order(n_epochs=1)
    before = dataset_stats(train_rows, label_key=label_key) if label_key else None
    after = dataset_stats([train_rows[i] for i in order], label_key=label_key) if label_key else None
    report["checks"].append(C.label_balance(before, after, balance=ext.balance))
    picked = [train_rows[i] for i in dict.fromkeys(order)][:rows]
    report.update({"rows": len(picked), "group_size": group_size, "max_tokens": ext.max_tokens,
                   "hyperparameters": hp})

    # 3. the policy as the trainer builds it, sampled with and without the response_format
    say(f"loading {spec.model} as the trainer does ({ext.finetune}, {ext.precision}, {ext.device})")
    phases: dict[str, float] = {}
    report["phases_s"] = phases
    mark = time.perf_counter()
    model, engine, grader = _policy(spec)
    phases["load"], mark = time.perf_counter() - mark, time.perf_counter()
    from openrft.evals import run_eval

    labels = run.labels
    params = run.sampling_params(group_size, seed)
    say(f"sampling {len(picked)} rows × {group_size} answers with the job's grader"
        + (" and response_format" if rl.response_format else ""))
    shaped = run_eval(picked, engine=engine, grader=rl.grader, graders=[grader], params=params, runs=group_size,
                      train_rows=train_rows, labels=labels, label_key=label_key or run.label_key, progress=progress,
                      seed=seed, plots=False, name="doctor")
    phases["sampling"], mark = time.perf_counter() - mark, time.perf_counter()
    free = None
    if rl.response_format:
        say(f"sampling {len(picked[:NO_FORMAT_ROWS])} rows × {NO_FORMAT_RUNS} answers without the response_format")
        free = run_eval(picked[:NO_FORMAT_ROWS], engine=engine, grader=rl.grader, graders=[grader], runs=NO_FORMAT_RUNS,
                        params=replace(params, response_format=None), progress=progress,
                        seed=seed, plots=False, name="doctor-no-format")
        phases["sampling_without_format"], mark = time.perf_counter() - mark, time.perf_counter()
    summary = shaped.summary
    reward = summary["reward"]
    rewards = [g.reward for r in shaped.rollouts for g in r.grades[0]]
    report["checks"] += [C.baseline_reward(reward), C.headroom(reward), C.zero_signal(reward, group_size),
                         C.grader_continuity(rewards)]
    guess = C.guessing_baseline(summary)
    if guess:
        report["checks"].append(guess)
    report["checks"].append(C.grader_errors(_errors(shaped), _errors(free) if free else None,
                                            max_share=ext.max_grader_error_share))
    free_parse = C.schema_parse_rate([s.output_text for r in free.rollouts for s in r.samples],
                                     rl.response_format) if free else None
    report["checks"].append(C.parse_errors(_parse_figures(shaped) if rl.response_format else None,
                                           {"rate": free_parse}))
    report["sampled"] = {"reward": {k: reward.get(k) for k in ("mean", "ci95", "std", "best_of_k_mean", "headroom",
                                                                 "zero_signal_share", "distinct_rewards")},
                         "tokens": summary["tokens"], "latency": summary["latency"],
                         "examples": [s.output_text for s in shaped.rollouts[0].samples[:3]] if shaped.rollouts else []}

    # 4. one timed unit of training work, scaled by the job's hyperparameters
    from openrft.doctor.estimate import describe_device, job_estimate, time_training

    say("timing a training step on one group")
    groups = [(r.samples[0].prompt_token_ids, [s.token_ids for s in r.samples]) for r in shaped.rollouts if r.samples]
    try:
        timed = time_training(model, groups, temperature=ext.temperature, learning_rate=run.learning_rate)
    except ValueError as exc:  # e.g. every sample empty: nothing to time, and nothing the trainer could learn from
        report["checks"].append(C.result("estimate", "warn", f"cannot time a training step: {exc}.", None))
        return _finish(report, began)
    phases["training"] = time.perf_counter() - mark
    n_items = max(1, reward["n_items"])
    estimate = job_estimate(
        total_steps=run.total_steps, batch_size=run.batch_size, group_size=group_size,
        updates_per_batch=ext.updates_per_batch, eval_interval=run.eval_interval, eval_samples=run.eval_samples,
        validate_at_start=ext.validate_at_start, n_valid=len(run.valid_rows),
        sampling_group_s=summary["latency"]["sampling_s"] / n_items,
        grading_group_s=summary["latency"]["grading_s"] / n_items,
        training_group_s=timed["group_s"], optimizer_s=timed["optimizer_s"],
        completion_tokens_mean=summary["tokens"]["completion_mean"],
        prompt_tokens_mean=summary["tokens"]["prompt_mean"],
        device=describe_device(ext.device))
    report["estimate"] = estimate
    report["checks"].append(C.estimate_check(estimate))
    return _finish(report, began)


def _finish(report: dict, began: float) -> dict:
    report["verdict"] = C.worst(report["checks"])
    report["elapsed_s"] = time.perf_counter() - began
    return report


def _policy(spec):
    """The model, engine and grader exactly as `openrft.training.loop` builds them for this job."""
    from openrft.engines.transformers import TransformersEngine
    from openrft.graders import build_grader
    from openrft.models import load_model

    ext = spec.openrft
    model, tokenizer = load_model(spec.model, dtype=ext.precision, device=ext.device)
    if ext.finetune == "lora":
        from openrft.models import add_lora

        model = add_lora(model, rank=ext.lora_rank, alpha=ext.lora_alpha, dropout=ext.lora_dropout,
                         target_modules=ext.lora_target_modules)
    model.eval()
    engine = TransformersEngine(model, tokenizer, model_name=spec.model)
    return model, engine, build_grader(spec.method.reinforcement.grader)


def _errors(result) -> dict:
    """Grader errors of an eval run, parse errors apart (the trainer's max_grader_error_share leaves them out)."""
    grades = [g for r in result.rollouts for g in r.grades[0]]
    failed = [g for g in grades if g.error_kind and g.error_kind != "sample_parse_error"]
    by_kind: dict[str, int] = {}
    for g in failed:
        by_kind[g.error_kind] = by_kind.get(g.error_kind, 0) + 1
    return {"rate": len(failed) / max(1, len(grades)), "by_kind": by_kind,
            "example": next((g.message for g in failed if g.message), None)}


def _parse_figures(result) -> dict:
    """Parse-error share, truncated share, and the mean reward of parsed and of unparsed answers."""
    pairs = [(s, g) for r in result.rollouts for s, g in zip(r.samples, r.grades[0])]
    parsed = [g.reward for s, g in pairs if not s.parse_error]
    unparsed = [g.reward for s, g in pairs if s.parse_error]
    return {"rate": result.summary["errors"]["sample_parse_error_rate"],
            "truncated": result.summary["tokens"]["truncated_share"],
            "reward_parsed": sum(parsed) / len(parsed) if parsed else None,
            "reward_unparsed": sum(unparsed) / len(unparsed) if unparsed else None}
