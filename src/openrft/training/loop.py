"""The RFT loop: sample a group per prompt, grade, update; validate with the eval code; checkpoint; resume.

    for step in 1..total_steps:
        rows      = the next `batch_size` rows of the (balanced, seeded) epoch order
        rollouts  = generate_and_grade(rows, engine=policy, n=group_size)      # the eval path, no copy
        advantages per group, zero-signal groups skipped and counted; `updates_per_batch` passes of the
        clipped policy loss, one optimizer step each                             # openrft.training.update
        every eval_interval steps: run_eval on the validation set (eval_samples runs per item),
                                   a checkpoint, the resume state, retention of the best three + last
        one metrics event per step in OpenAI's shape, to events.jsonl and the trackers   # training.metrics
        the reward-hacking guards on the metrics so far                          # openrft.training.guards

The job is read once (`openrft.runs.ResolvedJob`: rows, labels, sampling parameters, validation steps, grader).

Distributed (accelerate / torchrun, `openrft train --processes N` or `accelerate launch`): every process takes
its share of each step's prompts, accumulates gradients for its groups, and the gradients and token counts
are summed across processes before the optimizer step (`openrft.training.distributed`), so that any number of
zero-signal groups per process is fine. Validation, checkpoints and events are written by the main process.

Supervised and dpo jobs go to `openrft.training.offline` (run_job dispatches on `method.type`), which shares the
policy (`openrft.training.policy`) and the status changes (`openrft.training.lifecycle`).
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Callable

from openai.types.fine_tuning.fine_tuning_job import Error as JobError

from openrft import faults
from openrft.data.labels import labels_of
from openrft.errors import RuntimeFailure
from openrft.evals import generate_and_grade, run_eval
from openrft.runs import TERMINAL, EventLog, Job, ResolvedJob, load_job, save_job
from openrft.training.checkpoints import apply_retention, save_model, save_state, write_checkpoint
from openrft.training.distributed import Distributed, SignalStop, unwrap
from openrft.training.guards import check_step
from openrft.training.lifecycle import finish, resume, stop
from openrft.training.metrics import metrics_event, step_message
from openrft.training.policy import build_policy, set_seed
from openrft.training.trackers import Trackers
from openrft.training.update import policy_update


class JobFailed(RuntimeFailure):
    """A job that cannot go on (too many grader errors, a row the trainer cannot encode); the message says why."""


def run_job(run_dir: str | Path, *, should_stop: Callable[[], str | None] | None = None, progress: bool = True) -> dict:
    """Run or resume the job in `run_dir`; returns the final `fine_tuning.job` object (see docs/architecture.md)."""
    run_dir = Path(run_dir)
    record = load_job(run_dir)
    if record.status in TERMINAL:
        return record.to_dict()
    log = EventLog(run_dir)
    stop_signal = SignalStop()
    train = train_rft
    if record.kind != "reinforcement":  # supervised, dpo: learning from fixed rows
        from openrft.training.offline import train_offline as train
    try:
        job = ResolvedJob(record, source=str(run_dir / "job.json"))
        return train(run_dir, job, log, should_stop or (lambda: None), progress, stop_signal).to_dict()
    except JobFailed as exc:
        error = JobError(code="job_failed", message=str(exc), param=None)
        return finish(run_dir, record, log, "failed", error=error).to_dict()
    except Exception as exc:  # an unexpected error fails the job with its message, never silently
        log.emit(f"Job failed: {type(exc).__name__}: {exc}", level="error")
        error = JobError(code="internal_error", message=f"{type(exc).__name__}: {exc}", param=None)
        finish(run_dir, record, log, "failed", error=error)
        raise
    finally:
        stop_signal.restore()


def train_rft(run_dir: Path, job: ResolvedJob, log: EventLog, should_stop, progress: bool,
              stop_signal: SignalStop) -> Job:
    from rich.console import Console

    from openrft.engines.transformers import TransformersEngine

    dist = Distributed()
    console = Console(stderr=True, quiet=not progress or not dist.main)
    ext, record = job.options, job.job
    set_seed(job.seed)
    train_rows, valid_rows = job.train_rows, job.valid_rows
    model, tokenizer, optimizer = build_policy(job.model, ext, job.learning_rate, dist)
    engine = TransformersEngine(model, tokenizer, model_name=job.model)
    order = job.epoch_order()

    state = resume(run_dir, model, optimizer, log)
    start_step = state["step"] if state else 0
    trackers = Trackers(ext.trackers, run_dir, job.id, record.to_dict(), log=console.print) if dist.main else None
    record.status, record.fine_tuned_model = "running", None
    if dist.main:
        save_job(run_dir, record)
        if not state:
            log.emit(f"Fine-tuning job started: {job.total_steps} steps of {job.batch_size} prompts × "
                     f"{job.group_size} samples ({ext.finetune}, lr {job.learning_rate:g}, {dist.world} process(es))")
    best = (state or {}).get("best_valid", None)
    trained_tokens = (state or {}).get("trained_tokens", 0)

    def validate(step: int) -> dict | None:
        if not valid_rows or not dist.main:
            return None
        began = time.perf_counter()
        result = run_eval(valid_rows, engine=engine, grader=job.grader_spec, graders=[job.grader],
                          runs=job.eval_samples, params=job.valid_params(step),
                          out_dir=run_dir / "evals" / f"step-{step}", name=f"step-{step}",
                          train_rows=job.all_train_rows, labels=job.labels,
                          label_key=job.label_key, eval_id=record.eval_id, progress=progress, seed=job.seed,
                          group_key=ext.group_key)
        return {**result.summary, "eval_seconds": time.perf_counter() - began}

    def emit(step: int, rollouts, summary: dict | None, stats: dict, timing: dict) -> dict:
        data = metrics_event(step, job.total_steps, rollouts, summary, stats, timing, job.grader_spec,
                             label_key=job.label_key)
        log.emit(step_message(step, job.total_steps, rollouts, summary), type="metrics", data=data)
        if trackers:
            trackers.log(data, step)
        return data

    if start_step == 0 and 0 in job.validation_steps and dist.main:
        summary = validate(0)
        if summary:
            emit(0, None, summary, {}, {"eval": summary["eval_seconds"]})
    history = [e["data"] for e in log.read() if e.get("type") == "metrics" and e.get("data")]
    reference_freq = _label_freq(train_rows, ext.label_key)
    for step in range(start_step + 1, job.total_steps + 1):
        faults.set_step(step)  # fault-injection tests only (OPENRFT_FAULT): which step a hook is in
        action = should_stop() or stop_signal.action
        if action:
            return stop(run_dir, job, log, action, model, tokenizer, optimizer, step - 1,
                        {"best_valid": best, "trained_tokens": trained_tokens}, dist, trackers)
        # 1. sample and grade this process's share of the step's prompts
        t0 = time.perf_counter()
        batch = [order[i % len(order)] for i in range((step - 1) * job.batch_size, step * job.batch_size)]
        rows = [train_rows[i] for i in batch[dist.rank::dist.world]]
        rollouts, gen_timing = generate_and_grade(rows, engine=engine, graders=[job.grader],
                                                  criteria=[job.grader_spec], params=job.train_params(step, dist.rank),
                                                  batch_prompts=ext.prompts_per_generate)
        t_sampling = time.perf_counter() - t0
        _check_grader_errors(step, [g for r in rollouts for g in r.grades[0]], ext.max_grader_error_share, dist)
        # 2. update the policy
        t1 = time.perf_counter()
        stats = policy_update(model, optimizer, rollouts, ext, dist, engine)
        t_training = time.perf_counter() - t1
        trained_tokens += stats.pop("tokens_total", 0)
        # 3. validate, record, checkpoint
        summary = validate(step) if job.is_validation_step(step) else None
        timing = {"sampling": t_sampling, "training": t_training, "eval": summary["eval_seconds"] if summary else 0.0,
                  "grading": gen_timing["grading"], "full_iteration": time.perf_counter() - t0}
        if dist.main:
            data = emit(step, rollouts, summary, stats, timing)
            history.append(data)
            for warning in check_step(history, reference_label_freq=reference_freq):
                log.emit(f"Guard {warning['check']} ({warning['verdict']}) at step {step}: {warning['message']}",
                         level="warn", data={"guard": warning})
            if stats.get("skipped_nan"):
                log.emit(f"Step {step}: loss was NaN/inf; the update was skipped", level="warn")
            console.print(step_message(step, job.total_steps, rollouts, summary)
                          + f" | loss {stats['loss']:.4f} zero-signal {stats['zero_signal_share']:.2f}"
                          + f" | {timing['full_iteration']:.1f}s")
        if job.is_validation_step(step):
            if dist.main:
                best = _checkpoint(run_dir, job, model, tokenizer, step, data, summary, best)
                save_state(run_dir, model, optimizer,
                           {"step": step, "best_valid": best, "trained_tokens": trained_tokens})
            dist.barrier()
    if not dist.main:
        return record
    save_model(unwrap(model), tokenizer, run_dir / "checkpoints" / "final", job.base_model)
    record.trained_tokens, record.fine_tuned_model, record.result_files = trained_tokens, job.fine_tuned_model, []
    log.emit(f"New fine-tuned model created: {job.fine_tuned_model}")
    if best:
        log.emit(f"Best validation reward {best['reward']:.4f} at step {best['step']}")
    if trackers:
        trackers.close()
    return finish(run_dir, record, log, "succeeded")


def _check_grader_errors(step: int, grades, max_share: float, dist: Distributed) -> None:
    """Fail the job when the share of samples with a grader error (across processes) exceeds `max_share`."""
    share = dist.mean(sum(1 for g in grades if g.error_kind and g.error_kind != "sample_parse_error"), len(grades))
    if share > max_share:
        examples = "; ".join(sorted({str(g.errors)[:300] for g in grades if g.error_kind})[:3])
        raise JobFailed(f"step {step}: grader errors in {share:.0%} of samples exceed "
                        f"max_grader_error_share={max_share:.0%}. Examples: {examples}")


def _checkpoint(run_dir: Path, job: ResolvedJob, model, tokenizer, step: int, data: dict, summary: dict | None,
                best: dict | None) -> dict | None:
    """checkpoints/step-N with its metrics, retention; returns the best validation so far."""
    valid_reward = summary["reward"]["mean"] if summary else None
    metrics = {"step": step, "train_mean_reward": data["scores"]["train_reward_mean"],
               "full_valid_mean_reward": valid_reward}
    if summary and "classification" in summary:
        micro = summary["classification"]["micro"]
        metrics.update({f"full_valid_{k}": micro[k] for k in ("precision", "recall", "f1")})
    write_checkpoint(run_dir, unwrap(model), tokenizer, step=step, base_model=job.base_model, job_id=job.id,
                     checkpoint_model=job.checkpoint_model(step), metrics=metrics)
    if valid_reward is not None and (best is None or valid_reward > best["reward"]):
        best = {"step": step, "reward": valid_reward}
    apply_retention(run_dir, job.options.keep_checkpoints, step)
    return best


def _label_freq(rows: list[dict], key: str | None) -> dict | None:
    """The reference label distribution the guards compare predictions with: label occurrences in `rows`."""
    if not key:
        return None
    counts = Counter(label for r in rows for label in labels_of(r, key))
    total = sum(counts.values()) if counts else 0
    return {label: c / total for label, c in counts.items()} if total else None

