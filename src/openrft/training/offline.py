"""The loop of the methods that learn from fixed rows: supervised (SFT, openrft.training.sft) and dpo
(openrft.training.dpo). Nothing is sampled or graded; each step is one optimizer step on a batch of rows.

    for step in 1..total_steps:
        rows     = the next `batch_size` rows of the seeded epoch order (balanced by labels when rows carry them)
        train    = objective.batch(model, rows) -> gradient + train_loss, train_<metric>; one optimizer step
        valid    = the objective on the next `batch_size` validation rows (no gradient) -> valid_loss, valid_<metric>
        at the end of every epoch and at the last step: the whole validation subset -> full_valid_*, a checkpoint
        (retention keeps the `keep_checkpoints` lowest full_valid_loss + the last), the resume state
        one metrics event per step with OpenAI's names (SFT: train_loss, train_mean_token_accuracy, valid_loss,
        valid_mean_token_accuracy, full_valid_loss, full_valid_mean_token_accuracy)

Everything else is the RFT loop's (openrft.training.loop): the starting model, LoRA or full fine-tuning and the
optimizer (`build_policy`), checkpoints and resume state, pause / cancel / Ctrl-C at step boundaries (`_stop`),
the events log, the trackers, the final model and the report. One process only (no `--processes`).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch

from openrft import faults
from openrft.ids import checkpoint_model_name, fine_tuned_model_name
from openrft.training.checkpoints import (
    apply_retention,
    loss_score,
    save_model,
    save_state,
    write_checkpoint,
)
from openrft.training.events import EventLog
from openrft.training.job import save_job, spec_of
from openrft.training.loop import (
    JobFailed,
    _Distributed,
    _finish,
    _report,
    _stop,
    _unwrap,
    build_policy,
    epoch_order,
    resume,
    set_seed,
    subset,
)
from openrft.training.registry import checkpoint_base
from openrft.training.trackers import Trackers


def make_objective(spec, hp: dict, model):
    """The objective of a supervised or dpo job. DPO with full fine-tuning keeps a frozen copy of the starting
    model as its reference (with LoRA the reference is the policy with its adapters off)."""
    if spec.method.type == "supervised":
        from openrft.training.sft import SupervisedObjective

        return SupervisedObjective()
    from openrft.models import load_start_model
    from openrft.training.dpo import DpoObjective

    reference = None
    if not hasattr(model, "disable_adapter"):
        reference, _ = load_start_model(spec.model, dtype=spec.openrft.precision, device=spec.openrft.device)
        reference.requires_grad_(False)
        reference.eval()
    return DpoObjective(hp["beta"], reference)


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


def numbered_rows(job: dict, ext, seed: int) -> tuple[list[tuple[int, dict]], list[tuple[int, dict]]]:
    """(line, row) of the training rows (`max_train_rows`: a seeded subset) and of the validation subset
    (whole groups of `group_key`, at most `max_valid_rows` rows), as the RFT loop chooses them."""
    from openrft.data import load_rows
    from openrft.data.splits import group_subset

    method = job["method"]["type"]
    numbered = list(enumerate(load_rows(job["openrft"]["training_path"], method=method), start=1))
    train = subset(numbered, ext.max_train_rows, seed)
    valid_path = job["openrft"]["validation_path"]
    valid: list[tuple[int, dict]] = []
    if valid_path:
        rows = load_rows(valid_path, method=method)
        line_of = {id(row): line for line, row in enumerate(rows, start=1)}
        valid = [(line_of.get(id(row), 0), row) for row in group_subset(rows, ext.max_valid_rows, seed, ext.group_key)]
    return train, valid


def train_offline(run_dir: Path, job: dict, log: EventLog, should_stop, progress: bool, stop_signal) -> dict:
    """Run or resume a supervised or dpo job (the loop in the module's docstring); the final job object."""
    from rich.console import Console

    dist = _Distributed()
    if dist.active:
        raise JobFailed("supervised and dpo jobs run in one process: start them without --processes / torchrun")
    console = Console(stderr=True, quiet=not progress)
    spec = spec_of(job)
    ext, kind = spec.openrft, spec.method.type
    hp = job["method"][kind]["hyperparameters"]
    res = hp["resolved"]
    seed, total_steps, interval, batch_size = res["seed"], res["total_steps"], res["eval_interval"], hp["batch_size"]
    set_seed(seed)

    train_numbered, valid_numbered = numbered_rows(job, ext, seed)
    model, tokenizer, optimizer = build_policy(spec, res["learning_rate"], dist)
    objective = make_objective(spec, hp, model)
    train_examples = encode_rows(objective, tokenizer, train_numbered, job["openrft"]["training_path"])
    valid_examples = encode_rows(objective, tokenizer, valid_numbered, job["openrft"]["validation_path"])
    order = epoch_order([row for _, row in train_numbered], n_epochs=hp["n_epochs"], seed=seed, balance=ext.balance,
                        label_key=ext.label_key)
    ft_name = fine_tuned_model_name(spec.model, spec.suffix, job["id"])
    base_model = checkpoint_base(spec.model)

    state = resume(run_dir, model, optimizer, log)
    start_step = state["step"] if state else 0
    trackers = Trackers(ext.trackers, run_dir, job["id"], job, log=console.print)
    job.update(status="running", fine_tuned_model=None)
    save_job(run_dir, job)
    if not state:
        log.emit(f"Fine-tuning job started: {total_steps} steps of {batch_size} rows ({kind}, {ext.finetune}, "
                 f"lr {res['learning_rate']:g}" + (f", beta {hp['beta']:g}" if kind == "dpo" else "") + ")")
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
            return _stop(run_dir, job, log, action, model, tokenizer, optimizer, step - 1, best, trained_tokens,
                         spec, ft_name, dist, trackers)
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
        is_checkpoint = step % interval == 0 or step == total_steps
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
            write_checkpoint(run_dir, _unwrap(model), tokenizer, step=step, base_model=base_model, job_id=job["id"],
                             checkpoint_model=checkpoint_model_name(ft_name, step), metrics=metrics)
            if full and (best is None or full["loss"] < best["loss"]):
                best = {"step": step, "loss": full["loss"]}
            apply_retention(run_dir, ext.keep_checkpoints, step, score=loss_score)
            save_state(run_dir, model, optimizer, {"step": step, "best_valid": best, "trained_tokens": trained_tokens})
    save_model(_unwrap(model), tokenizer, run_dir / "checkpoints" / "final", base_model)
    job["trained_tokens"] = trained_tokens
    job["fine_tuned_model"] = ft_name
    job["result_files"] = []
    log.emit(f"New fine-tuned model created: {ft_name}")
    if best:
        log.emit(f"Best full validation loss {best['loss']:.4f} at step {best['step']}")
    trackers.close()
    _report(run_dir, log)
    return _finish(run_dir, job, log, "succeeded")


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
