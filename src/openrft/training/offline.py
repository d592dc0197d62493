"""The loop of the methods that learn from fixed rows: supervised (SFT, openrft.training.sft) and dpo
(openrft.training.dpo). Nothing is sampled or graded; each step is one optimizer step on a batch of rows.

    for step in 1..total_steps:
        rows     = the next `batch_size` rows of the seeded epoch order (label-balanced with `openrft.balance`)
        train    = objective.batch(model, rows) -> gradient + train_loss, train_<metric>; one optimizer step
        valid    = the objective on the next `batch_size` validation rows (no gradient) -> valid_loss, valid_<metric>
        at the end of every epoch and at the last step: the whole validation subset -> full_valid_*, a checkpoint
        (retention keeps the `keep_checkpoints` lowest full_valid_loss + the last), the resume state
        one metrics event per step with OpenAI's names (SFT: train_loss, train_mean_token_accuracy, valid_loss,
        valid_mean_token_accuracy, full_valid_loss, full_valid_mean_token_accuracy)

Everything else is shared with the RFT loop (openrft.training.loop): the job read once (`openrft.runs.ResolvedJob`),
the starting model, LoRA or full fine-tuning and the optimizer (`openrft.training.policy`), checkpoints and resume
state, pause / cancel / Ctrl-C at step boundaries (`openrft.training.lifecycle`), the events log, the trackers and the
final model. One process only (no `--processes`).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch

from openrft import faults
from openrft.runs import EventLog, Job, ResolvedJob, save_job
from openrft.training.checkpoints import apply_retention, save_model, save_state, write_checkpoint
from openrft.training.distributed import Distributed, SignalStop, unwrap
from openrft.training.lifecycle import finish, resume, stop
from openrft.training.loop import JobFailed
from openrft.training.policy import build_policy, set_seed
from openrft.training.trackers import Trackers


def make_objective(job: ResolvedJob, model):
    """The objective of a supervised or dpo job. DPO with full fine-tuning keeps a frozen copy of the starting
    model as its reference (with LoRA the reference is the policy with its adapters off)."""
    if job.kind == "supervised":
        from openrft.training.sft import SupervisedObjective

        return SupervisedObjective()
    from openrft.models import load_start_model
    from openrft.training.dpo import DpoObjective

    reference = None
    if not hasattr(model, "disable_adapter"):
        reference, _ = load_start_model(job.model, dtype=job.options.precision, device=job.options.device)
        reference.requires_grad_(False)
        reference.eval()
    return DpoObjective(job.beta, reference)


def encode_rows(objective, tokenizer, numbered: list[tuple[int, dict]], path: str) -> list:
    """Every row as the objective's training example; a row the chat template cannot render fails the job
    naming its file and line."""
    from openrft.training.sft import EncodingError

    examples = []
    for line, row in numbered:
        try:
            examples.append(objective.encode(tokenizer, row, f"{path}:{line}"))
        except EncodingError as exc:
            raise JobFailed(str(exc)) from None
    return examples


def train_offline(run_dir: Path, job: ResolvedJob, log: EventLog, should_stop, progress: bool,
                  stop_signal: SignalStop) -> Job:
    """Run or resume a supervised or dpo job (the loop in the module's docstring); the final job object."""
    from rich.console import Console

    dist = Distributed()
    if dist.active:
        raise JobFailed("supervised and dpo jobs run in one process: start them without --processes / torchrun")
    console = Console(stderr=True, quiet=not progress)
    ext, kind, record = job.options, job.kind, job.job
    total_steps, batch_size = job.total_steps, job.batch_size
    set_seed(job.seed)

    model, tokenizer, optimizer = build_policy(job.model, ext, job.learning_rate, dist)
    objective = make_objective(job, model)
    train_examples = encode_rows(objective, tokenizer, job.numbered_train_rows, job.training_path)
    valid_examples = encode_rows(objective, tokenizer, job.numbered_valid_rows, str(job.validation_path))
    order = job.epoch_order()

    state = resume(run_dir, model, optimizer, log)
    start_step = state["step"] if state else 0
    trackers = Trackers(ext.trackers, run_dir, job.id, record.to_dict(), log=console.print)
    record.status, record.fine_tuned_model = "running", None
    save_job(run_dir, record)
    if not state:
        log.emit(f"Fine-tuning job started: {total_steps} steps of {batch_size} rows ({kind}, {ext.finetune}, "
                 f"lr {job.learning_rate:g}" + (f", beta {job.beta:g}" if kind == "dpo" else "") + ")")
    best = (state or {}).get("best_valid")
    trained_tokens = (state or {}).get("trained_tokens", 0)

    def evaluate(examples: list) -> dict:
        model.eval()
        return objective.batch(model, examples, train=False) if examples else {}

    if start_step == 0 and ext.validate_at_start and valid_examples:
        began = time.perf_counter()
        full = evaluate(valid_examples)
        data = {"step": 0, "total_steps": total_steps, **_named("valid", full, objective),
                **_named("full_valid", full, objective), "timing": {"eval": time.perf_counter() - began}}
        log.emit(_message(0, total_steps, data), type="metrics", data=data)
        trackers.log(data, 0)
    step = start_step
    for step in range(start_step + 1, total_steps + 1):
        faults.set_step(step)  # fault-injection tests only (OPENRFT_FAULT)
        action = should_stop() or stop_signal.action
        if action:
            return stop(run_dir, job, log, action, model, tokenizer, optimizer, step - 1,
                        {"best_valid": best, "trained_tokens": trained_tokens}, dist, trackers)
        t0 = time.perf_counter()
        batch = [train_examples[order[i % len(order)]] for i in range((step - 1) * batch_size, step * batch_size)]
        model.train()
        optimizer.zero_grad(set_to_none=True)
        train = objective.batch(model, batch, train=True)
        update = _optimizer_step(model, optimizer, train["loss"], ext.max_grad_norm)
        trained_tokens += sum(objective.tokens(e) for e in batch)
        t_training = time.perf_counter() - t0

        t1 = time.perf_counter()
        valid = {}
        if valid_examples:
            start = (step - 1) * batch_size
            valid = evaluate([valid_examples[i % len(valid_examples)] for i in range(start, start + batch_size)])
        is_checkpoint = job.is_validation_step(step)
        full = evaluate(valid_examples) if is_checkpoint else {}
        timing = {"training": t_training, "eval": time.perf_counter() - t1, "full_iteration": time.perf_counter() - t0}
        data = {"step": step, "total_steps": total_steps, **_named("train", train, objective),
                **_named("valid", valid, objective), **_named("full_valid", full, objective), "timing": timing,
                "train": {**update, "tokens": sum(objective.tokens(e) for e in batch),
                          **({"target_tokens": train["target_tokens"]} if "target_tokens" in train else {})}}
        log.emit(_message(step, total_steps, data), type="metrics", data=data)
        if update["skipped_nan"]:
            log.emit(f"Step {step}: loss was NaN/inf; the update was skipped", level="warn")
        trackers.log(data, step)
        console.print(_message(step, total_steps, data) + f" | {timing['full_iteration']:.1f}s")
        if is_checkpoint:
            metrics = {k: v for k, v in data.items() if k not in ("total_steps", "timing", "train")}
            write_checkpoint(run_dir, unwrap(model), tokenizer, step=step, base_model=job.base_model, job_id=job.id,
                             checkpoint_model=job.checkpoint_model(step), metrics=metrics)
            if full and (best is None or full["loss"] < best["loss"]):
                best = {"step": step, "loss": full["loss"]}
            apply_retention(run_dir, ext.keep_checkpoints, step)
            save_state(run_dir, model, optimizer, {"step": step, "best_valid": best, "trained_tokens": trained_tokens})
    save_model(unwrap(model), tokenizer, run_dir / "checkpoints" / "final", job.base_model)
    record.trained_tokens, record.fine_tuned_model, record.result_files = trained_tokens, job.fine_tuned_model, []
    log.emit(f"New fine-tuned model created: {job.fine_tuned_model}")
    if best:
        log.emit(f"Best full validation loss {best['loss']:.4f} at step {best['step']}")
    trackers.close()
    return finish(run_dir, record, log, "succeeded")


def _optimizer_step(model, optimizer, loss: float, max_grad_norm: float) -> dict:
    """Clip and apply the accumulated gradient, unless the loss or a gradient is not finite (then skipped)."""
    params = [p for p in model.parameters() if p.requires_grad]
    stats = {"grad_norm": 0.0, "learning_rate": optimizer.param_groups[0]["lr"], "skipped_nan": 0}
    if not math.isfinite(loss) or any(p.grad is not None and not torch.isfinite(p.grad).all() for p in params):
        optimizer.zero_grad(set_to_none=True)
        stats["skipped_nan"] = 1
        return stats
    stats["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(params, max_grad_norm))
    faults.maybe_fail("optimizer")
    optimizer.step()
    return stats


def _named(prefix: str, metrics: dict, objective) -> dict:
    """`{prefix}_{name}` for the objective's metrics (OpenAI's flat names: train_loss, valid_mean_token_accuracy…)."""
    return {f"{prefix}_{name}": metrics[name] for name in objective.metric_names if name in metrics}


def _message(step: int, total: int, data: dict) -> str:
    parts = [f"Step {step}/{total}"]
    for prefix, words in (("train", "training loss"), ("valid", "validation loss"),
                          ("full_valid", "full validation loss")):
        if f"{prefix}_loss" in data:
            parts.append(f"{words}={data[f'{prefix}_loss']:.4f}")
    return parts[0] + (": " + ", ".join(parts[1:]) if len(parts) > 1 else "")
