"""The RFT loop: sample a group per prompt, grade, update; validate with the eval code; checkpoint; resume.

    for step in 1..total_steps:
        rows      = the next `batch_size` rows of the (balanced, seeded) epoch order
        rollouts  = generate_and_grade(rows, engine=policy, n=group_size)      # the eval path, no copy
        advantages per group (openrft.training.algorithm), zero-signal groups skipped and counted
        for pass in 1..updates_per_batch: clipped policy loss over all groups, one optimizer step
        every eval_interval steps: run_eval on the validation set (eval_samples runs per item),
                                   a checkpoint, the resume state, retention of the best three + last
        one metrics event per step in OpenAI's shape, to events.jsonl and the trackers

Distributed (accelerate / torchrun, `openrft train --processes N` or `accelerate launch`): every process takes
its share of each step's prompts, accumulates gradients for its groups, and the gradients and token counts
are summed across processes before the optimizer step, so that any number of zero-signal groups per process
is fine. Validation, checkpoints and events are written by the main process.

Supervised and dpo jobs go to `openrft.training.offline` (run_job dispatches on `method.type`), which reuses this
module's model building (`build_policy`), stop handling and finishing.
"""

from __future__ import annotations

import math
import random
import signal
import time
from collections import Counter
from pathlib import Path
from statistics import mean
from typing import Any, Callable, TypeVar

import numpy as np
import torch

from openrft import faults
from openrft.engines.base import SamplingParams
from openrft.errors import RuntimeFailure
from openrft.evals import generate_and_grade, metrics, run_eval
from openrft.graders.grade import METRIC_ERROR_FLAGS as ERROR_KINDS
from openrft.ids import checkpoint_model_name as checkpoint_name
from openrft.ids import fine_tuned_model_name as model_name
from openrft.training import algorithm
from openrft.training.checkpoints import apply_retention, load_state, save_model, save_state, write_checkpoint
from openrft.training.events import EventLog
from openrft.training.job import TERMINAL, load_job, save_job, spec_of
from openrft.training.registry import checkpoint_base
from openrft.training.trackers import Trackers


class JobFailed(RuntimeFailure):
    """A job that cannot go on (too many grader errors, a row the trainer cannot encode); the message says why."""


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


T = TypeVar("T")


def subset(rows: list[T], limit: int | None, seed: int) -> list[T]:
    """A seeded random subset of `limit` rows in file order (files are often sorted by source or language)."""
    if not limit or limit >= len(rows):
        return rows
    keep = sorted(random.Random(seed).sample(range(len(rows)), limit))
    return [rows[i] for i in keep]


def validation_rows(job: dict, ext, seed: int) -> list[dict]:
    """The rows every validation step of the run scores: a seeded subset of whole groups (`ext.group_key`:
    an act and its translations) of the validation file, at most `max_valid_rows` rows."""
    from openrft.data import load_rows
    from openrft.data.splits import group_subset

    path = job["openrft"]["validation_path"]
    method = job["method"].get("type", "reinforcement")
    return group_subset(load_rows(path, method=method), ext.max_valid_rows, seed, ext.group_key) if path else []


def epoch_order(rows: list[dict], *, n_epochs: int, seed: int, balance: bool, label_key: str | None) -> list[int]:
    """Row indices for all epochs: balanced by labels (openrft.data.balance_rows) or shuffled, seeded per epoch."""
    order: list[int] = []
    indexed = [{**row, "_row_index": i} for i, row in enumerate(rows)]
    for epoch in range(n_epochs):
        if balance and label_key and all(isinstance(r.get(label_key), list) for r in rows):
            from openrft.data import balance_rows

            chosen = [r["_row_index"] for r in balance_rows(indexed, label_key=label_key, seed=seed + epoch)]
            random.Random(seed + epoch).shuffle(chosen)
            order.extend(chosen[:len(rows)] if len(chosen) >= len(rows) else chosen)
        else:
            idx = list(range(len(rows)))
            random.Random(seed + epoch).shuffle(idx)
            order.extend(idx)
    return order


def run_job(run_dir: str | Path, *, should_stop: Callable[[], str | None] | None = None, progress: bool = True) -> dict:
    """Run or resume the job in `run_dir`; returns the final job object (see docs/architecture.md)."""
    run_dir = Path(run_dir)
    job = load_job(run_dir)
    if job["status"] in TERMINAL:
        return job
    log = EventLog(run_dir)
    stop_signal = _SignalStop()
    train = _train
    if job["method"].get("type", "reinforcement") != "reinforcement":  # supervised, dpo: learning from fixed rows
        from openrft.training.offline import train_offline as train
    try:
        return train(run_dir, job, log, should_stop or (lambda: None), progress, stop_signal)
    except JobFailed as exc:
        return _finish(run_dir, job, log, "failed", error={"code": "job_failed", "message": str(exc), "param": None})
    except Exception as exc:  # an unexpected error fails the job with its message, never silently
        log.emit(f"Job failed: {type(exc).__name__}: {exc}", level="error")
        _finish(run_dir, job, log, "failed", error={"code": "internal_error", "message": f"{type(exc).__name__}: {exc}",
                                                     "param": None})
        raise
    finally:
        stop_signal.restore()


def _train(run_dir: Path, job: dict, log: EventLog, should_stop, progress: bool, stop_signal: "_SignalStop") -> dict:
    from rich.console import Console

    from openrft.data import load_rows
    from openrft.engines.transformers import TransformersEngine
    from openrft.graders import build_grader

    dist = _Distributed()
    console = Console(stderr=True, quiet=not progress or not dist.main)
    spec = spec_of(job)
    ext = spec.openrft
    rl = spec.rl
    hp = job["method"]["reinforcement"]["hyperparameters"]
    res = hp["resolved"]
    seed, total_steps, group_size = res["seed"], res["total_steps"], res["group_size"]
    set_seed(seed)

    all_train_rows = load_rows(job["openrft"]["training_path"])  # the model-free baselines' label statistics
    train_rows = subset(all_train_rows, ext.max_train_rows, seed)
    valid_rows = validation_rows(job, ext, seed)
    labels = eval_labels(ext, train_rows + valid_rows)

    model, tokenizer, optimizer = build_policy(spec, res["learning_rate"], dist)
    engine = TransformersEngine(model, tokenizer, model_name=spec.model)
    grader = build_grader(rl.grader)
    reasoning = reasoning_effort(hp)
    order = epoch_order(train_rows, n_epochs=hp["n_epochs"], seed=seed, balance=ext.balance, label_key=ext.label_key)
    ft_name = model_name(spec.model, spec.suffix, job["id"])
    base_model = checkpoint_base(spec.model)

    state = resume(run_dir, model, optimizer, log)
    start_step = state["step"] if state else 0
    trackers = Trackers(ext.trackers, run_dir, job["id"], job, log=console.print) if dist.main else None
    job.update(status="running", fine_tuned_model=None)
    if dist.main:
        save_job(run_dir, job)
        if not state:
            log.emit(f"Fine-tuning job started: {total_steps} steps of {hp['batch_size']} prompts × {group_size} "
                     f"samples ({ext.finetune}, lr {res['learning_rate']:g}, {dist.world} process(es))")
    best = (state or {}).get("best_valid", None)
    trained_tokens = (state or {}).get("trained_tokens", 0)

    def validate(step: int) -> dict | None:
        if not valid_rows or not dist.main:
            return None
        began = time.perf_counter()
        result = run_eval(valid_rows, engine=engine, grader=rl.grader, graders=[grader], runs=hp["eval_samples"],
                          params=sampling_params(ext, rl.response_format, reasoning, 1, seed + 7919 * step),
                          out_dir=run_dir / "evals" / f"step-{step}", name=f"step-{step}", train_rows=all_train_rows,
                          labels=labels, label_key=ext.label_key or "labels", eval_id=job["eval_id"],
                          progress=progress, seed=seed, group_key=ext.group_key)
        summary = result.summary
        summary["eval_seconds"] = time.perf_counter() - began
        return summary

    if start_step == 0 and ext.validate_at_start and dist.main:
        summary = validate(0)
        if summary:
            data = _metrics_event(0, total_steps, None, summary, {}, {"eval": summary["eval_seconds"]}, rl.grader)
            log.emit(_message(0, total_steps, None, summary), type="metrics", data=data)
            if trackers:
                trackers.log(data, 0)
    history = [e["data"] for e in log.read() if e.get("type") == "metrics" and e.get("data")]
    reference_freq = _label_freq(train_rows, ext.label_key)
    step = start_step
    for step in range(start_step + 1, total_steps + 1):
        faults.set_step(step)  # fault-injection tests only (OPENRFT_FAULT): which step a hook is in
        action = should_stop() or stop_signal.action
        if action:
            return _stop(run_dir, job, log, action, model, tokenizer, optimizer, step - 1, best, trained_tokens,
                         spec, ft_name, dist, trackers)
        t0 = time.perf_counter()
        batch_idx = [order[(i) % len(order)] for i in range((step - 1) * hp["batch_size"], step * hp["batch_size"])]
        mine = batch_idx[dist.rank::dist.world]
        rows = [train_rows[i] for i in mine]
        sp = sampling_params(ext, rl.response_format, reasoning, group_size, seed * 100003 + step * 101 + dist.rank)
        rollouts, gen_timing = generate_and_grade(rows, engine=engine, graders=[grader], criteria=[rl.grader],
                                                  params=sp, batch_prompts=ext.prompts_per_generate)
        t_sampling = time.perf_counter() - t0
        grades = [g for r in rollouts for g in r.grades[0]]
        error_share = dist.mean(sum(1 for g in grades if g.error_kind and g.error_kind != "sample_parse_error"),
                                len(grades))
        if error_share > ext.max_grader_error_share:
            examples = "; ".join(sorted({str(g.errors) [:300] for g in grades if g.error_kind})[:3])
            raise JobFailed(f"step {step}: grader errors in {error_share:.0%} of samples exceed "
                            f"max_grader_error_share={ext.max_grader_error_share:.0%}. Examples: {examples}")
        t1 = time.perf_counter()
        stats = _update(model, optimizer, rollouts, ext, dist, engine)
        t_training = time.perf_counter() - t1
        trained_tokens += stats.pop("tokens_total", 0)

        summary = None
        is_eval_step = step % hp["eval_interval"] == 0 or step == total_steps
        if is_eval_step:
            summary = validate(step)
        timing = {"sampling": t_sampling, "training": t_training, "eval": summary["eval_seconds"] if summary else 0.0,
                  "grading": gen_timing["grading"]}
        timing["full_iteration"] = time.perf_counter() - t0
        if dist.main:
            data = _metrics_event(step, total_steps, rollouts, summary, stats, timing, rl.grader)
            log.emit(_message(step, total_steps, rollouts, summary), type="metrics", data=data)
            history.append(data)
            for warning in _guards(history, reference_freq):
                log.emit(f"Guard {warning['check']} ({warning['verdict']}) at step {step}: {warning['message']}",
                         level="warn", data={"guard": warning})
            if stats.get("skipped_nan"):
                log.emit(f"Step {step}: loss was NaN/inf; the update was skipped", level="warn")
            if trackers:
                trackers.log(data, step)
            console.print(_message(step, total_steps, rollouts, summary)
                          + f" | loss {stats['loss']:.4f} zero-signal {stats['zero_signal_share']:.2f}"
                          + f" | {timing['full_iteration']:.1f}s")
        if is_eval_step:
            if dist.main:
                valid_reward = summary["reward"]["mean"] if summary else None
                metrics = {"step": step, "train_mean_reward": data["scores"]["train_reward_mean"],
                           "full_valid_mean_reward": valid_reward}
                if summary and "classification" in summary:
                    metrics.update({f"full_valid_{k}": summary["classification"]["micro"][k]
                                    for k in ("precision", "recall", "f1")})
                write_checkpoint(run_dir, _unwrap(model), tokenizer, step=step, base_model=base_model, job_id=job["id"],
                                 checkpoint_model=checkpoint_name(ft_name, step), metrics=metrics)
                if valid_reward is not None and (best is None or valid_reward > best["reward"]):
                    best = {"step": step, "reward": valid_reward}
                apply_retention(run_dir, ext.keep_checkpoints, step)
                save_state(run_dir, model, optimizer,
                           {"step": step, "best_valid": best, "trained_tokens": trained_tokens})
            dist.barrier()
    if dist.main:
        save_model(_unwrap(model), tokenizer, run_dir / "checkpoints" / "final", base_model)
        job["trained_tokens"] = trained_tokens
        job["fine_tuned_model"] = ft_name
        job["result_files"] = []
        log.emit(f"New fine-tuned model created: {ft_name}")
        if best:
            log.emit(f"Best validation reward {best['reward']:.4f} at step {best['step']}")
        if trackers:
            trackers.close()
        _report(run_dir, log)
        return _finish(run_dir, job, log, "succeeded")
    return job


def resume(run_dir: Path, model, optimizer, log: EventLog) -> dict | None:
    """The run's saved state (model and optimizer restored in place), or None for a fresh start. The events of
    steps after the saved state (lost when the process died) are dropped from the log, and so are all metrics
    events of a run that died before its first saved state."""
    state = load_state(run_dir, model, optimizer)
    if state:
        step = state["step"]
        dropped = log.truncate_after_step(step)
        log.emit(f"Resumed from step {step}" + (f" ({dropped} events of lost steps dropped)" if dropped else ""))
    elif any(e.get("type") == "metrics" for e in log.read()):  # died before its first saved state: start over
        dropped = log.truncate_after_step(-1)
        log.emit(f"Restarted from the beginning ({dropped} events of lost steps dropped)")
    return state


def build_policy(spec, learning_rate: float, dist: "_Distributed"):
    """(model, tokenizer, optimizer) of a job: the starting model (a fine-tuned adapter merged into its base:
    openrft.models.load_start_model), with fresh LoRA adapters or all weights trainable, and AdamW."""
    from openrft.models import add_lora, load_start_model

    ext = spec.openrft
    device = ext.device
    if device == "cuda" and dist.active:  # one GPU per process
        device = f"cuda:{int(__import__('os').environ.get('LOCAL_RANK', 0))}"
    model, tokenizer = load_start_model(spec.model, dtype=ext.precision, device=device)
    if ext.finetune == "lora":
        model = add_lora(model, rank=ext.lora_rank, alpha=ext.lora_alpha, dropout=ext.lora_dropout,
                         target_modules=ext.lora_target_modules)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=learning_rate, weight_decay=ext.weight_decay)
    return model, tokenizer, optimizer


def reasoning_effort(hp: dict) -> str | None:
    """The resolved hyperparameters' reasoning_effort for the engine: None for "default" (no think budget)."""
    return None if hp["reasoning_effort"] == "default" else hp["reasoning_effort"]


def eval_labels(ext, rows: list[dict]) -> list[str] | None:
    """The label set a run's evals score: the job's `labels`, else every label found in `rows`."""
    from openrft.data.labels import label_set

    return ext.labels or label_set(rows, ext.label_key)


def sampling_params(ext, response_format, reasoning, n, seed) -> SamplingParams:
    """The trainer's (and its validations') sampling parameters; the demo's held-out comparison reuses them."""
    return SamplingParams(n=n, temperature=ext.temperature, top_p=ext.top_p, max_tokens=ext.max_tokens, seed=seed,
                          response_format=response_format, reasoning_effort=reasoning)


def _update(model, optimizer, rollouts, ext, dist, engine) -> dict:
    """`updates_per_batch` optimizer steps over this step's groups (see openrft.training.algorithm).

    The log-probabilities are recomputed under the distribution the rollouts were sampled from: the job's
    temperature and top_p, and each sample's constraint masks replayed by `engine`.
    """
    groups = []
    zero_signal = truncated = infrastructure = 0
    lengths: list[int] = []
    for rollout in rollouts:
        lengths.extend(len(s.token_ids) for s in rollout.samples)
        truncated += sum(1 for s in rollout.samples if s.finish_reason == "length")
        failed = [g.infrastructure_failed for g in rollout.grades[0]]
        infrastructure += sum(failed)
        adv = algorithm.graded_advantages(rollout.rewards, failed, scale=ext.scale_rewards)
        if adv is None:
            zero_signal += 1
            continue
        keep = [i for i in adv if len(rollout.samples[i].token_ids) > 0
                and not (ext.truncated == "mask" and rollout.samples[i].finish_reason == "length")]
        if keep:
            samples = [rollout.samples[i] for i in keep]
            groups.append({"prompt": samples[0].prompt_token_ids,
                           "completions": [s.token_ids for s in samples],
                           "masks": [engine.replay_masks(s) for s in samples],
                           "sampler_logprobs": [s.logprobs for s in samples],
                           "advantages": torch.tensor([adv[i] for i in keep], dtype=torch.float32)})
    local_tokens = sum(len(c) for g in groups for c in g["completions"])
    total_tokens = int(dist.sum(local_tokens))
    n_groups = dist.sum(len(rollouts))
    stats = {"loss": 0.0, "kl": 0.0, "clip_fraction": 0.0, "entropy": 0.0, "grad_norm": 0.0, "ratio_mean": 1.0,
             "zero_signal_groups": int(dist.sum(zero_signal)), "groups": int(n_groups),
             "infrastructure_failures": int(dist.sum(infrastructure)),
             "zero_signal_share": dist.sum(zero_signal) / max(1, n_groups),
             "truncated_share": dist.sum(truncated) / max(1, dist.sum(len(lengths))),
             "response_length_mean": dist.sum(sum(lengths)) / max(1, dist.sum(len(lengths))),
             "sampler_logprob_gap": 0.0, "skipped_nan": 0, "tokens_total": total_tokens,
             "learning_rate": optimizer.param_groups[0]["lr"]}
    if total_tokens == 0:
        return stats
    model.train()
    ref_needed = ext.kl_coef > 0 and hasattr(model, "disable_adapter")
    losses, clips, kls, ratios, entropies, gaps, norms = [], [], [], [], [], [], []
    # the instructions every prompt of the step starts with: run once per pass, not once per group
    prompts = [r.samples[0].prompt_token_ids for r in rollouts if r.samples]
    reference_instructions = None  # the same for the reference model (the adapter off), for the KL term
    if ref_needed:
        with torch.no_grad(), model.disable_adapter():
            reference_instructions = algorithm.SharedInstructions.of(model, prompts)
    for update in range(ext.updates_per_batch):
        optimizer.zero_grad(set_to_none=True)
        step_loss = 0.0
        instructions = algorithm.SharedInstructions.of(model, prompts)
        for g in groups:
            logprobs, mask, entropy = algorithm.sequence_logprobs(model, g["prompt"], g["completions"],
                                                                  temperature=ext.temperature, top_p=ext.top_p,
                                                                  masks=g["masks"], with_entropy=update == 0,
                                                                  instructions=instructions)
            if update == 0:
                g["old"] = logprobs.detach()
                sampler = torch.zeros_like(g["old"])
                for i, lp in enumerate(g["sampler_logprobs"]):
                    sampler[i, :len(lp)] = torch.tensor(lp[:mask.shape[1]])
                gaps.append(float(((g["old"] - sampler).abs() * mask).sum() / mask.sum()))
                assert entropy is not None  # asked for on the first pass (with_entropy)
                entropies.append(float((entropy * mask).sum() / mask.sum()))
                if ref_needed:
                    with torch.no_grad(), model.disable_adapter():
                        g["ref"], _, _ = algorithm.sequence_logprobs(model, g["prompt"], g["completions"],
                                                                     temperature=ext.temperature, top_p=ext.top_p,
                                                                     masks=g["masks"],
                                                                     instructions=reference_instructions)
            terms = algorithm.clipped_policy_loss(logprobs, g["old"], g["advantages"], mask,
                                                  clip_epsilon=ext.clip_epsilon, total_tokens=total_tokens,
                                                  ref_logprobs=g.get("ref"), kl_coef=ext.kl_coef)
            terms.loss.backward()
            step_loss += float(terms.loss.detach())
            clips.append(terms.clip_fraction_sum)
            kls.append(terms.kl_sum)
            ratios.append(terms.ratio_sum)
        if instructions is not None:
            instructions.backward()
        dist.all_reduce_grads(model)
        step_loss = dist.sum(step_loss)
        if not math.isfinite(step_loss) or any(p.grad is not None and not torch.isfinite(p.grad).all()
                                               for p in model.parameters() if p.requires_grad):
            optimizer.zero_grad(set_to_none=True)
            stats["skipped_nan"] += 1
            continue
        norm = torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], ext.max_grad_norm)
        norms.append(float(norm))
        faults.maybe_fail("optimizer")
        optimizer.step()
        losses.append(step_loss)
    model.eval()
    token_passes = max(1, total_tokens * ext.updates_per_batch)
    stats.update({"loss": mean(losses) if losses else float("nan"),
                  "kl": dist.sum(sum(kls)) / token_passes, "clip_fraction": dist.sum(sum(clips)) / token_passes,
                  "ratio_mean": dist.sum(sum(ratios)) / token_passes,
                  "entropy": mean(entropies) if entropies else 0.0, "grad_norm": mean(norms) if norms else 0.0,
                  "sampler_logprob_gap": mean(gaps) if gaps else 0.0})
    return stats


def _metrics_event(step, total_steps, rollouts, summary, stats, timing, grader_spec) -> dict:
    """One step's metrics in OpenAI's shape (openai-rft-api.md §1.8), plus `train` (RL internals) and `valid`."""
    name, gtype = grader_spec.get("name", "grader"), grader_spec.get("type")
    data: dict = {"step": step, "total_steps": total_steps, "scores": {}, "usage": {}, "errors": {}, "timing": {}}
    grader_scores = {"name": name, "type": gtype}
    grader_errors = {"name": name, "type": gtype}
    grader_timing = {"name": name, "type": gtype}
    usage = {}
    if rollouts:
        samples = [s for r in rollouts for s in r.samples]
        grades = [g for r in rollouts for g in r.grades[0]]
        train_mean = mean(g.reward for g in grades)
        data["scores"]["train_reward_mean"] = train_mean
        grader_scores["train_reward_mean"] = train_mean
        usage.update({"train_reasoning_tokens_mean": mean(s.reasoning_tokens for s in samples),
                      "train_reasoning_tokens_count": sum(s.reasoning_tokens for s in samples)})
        for kind in ERROR_KINDS:
            count = sum(1 for g, s in zip(grades, samples)
                        if g.error_kind == kind or (kind == "sample_parse_error" and s.parse_error))
            grader_errors[f"train_{kind}_count"] = count
            grader_errors[f"train_{kind}_mean"] = count / len(grades)
        grader_timing["train_execution_latency_mean"] = mean(g.execution_time for g in grades)
        data["train_mean_reward"] = train_mean
        data["completion_tokens_mean"] = mean(s.completion_tokens for s in samples)
        data["reasoning_tokens_mean"] = usage["train_reasoning_tokens_mean"]
        predicted = Counter(label for s in samples for label in (metrics.predicted_labels(s.output_json) or ()))
        if predicted or any(isinstance(r.row.get("labels"), list) for r in rollouts):
            data.setdefault("train", {})["predicted_label_counts"] = dict(predicted)
            data["train"]["reference_label_counts"] = dict(Counter(
                label for r in rollouts for label in (r.row.get("labels") or []) for _ in r.samples))
        subs = _sub_means(grades)
        data["scores"]["graders"] = [grader_scores] + [{"name": k, "type": "sub_grader", "train_reward_mean": v}
                                                       for k, v in subs.items()]
    else:
        data["scores"]["graders"] = [grader_scores]
    if summary:
        valid = summary["reward"]["mean"]
        data["scores"]["valid_reward_mean"] = valid
        grader_scores["valid_reward_mean"] = valid
        for entry in data["scores"]["graders"][1:]:
            entry["valid_reward_mean"] = summary.get("sub_rewards", {}).get(entry["name"])
        for key, value in summary.get("sub_rewards", {}).items():
            if key not in {e["name"] for e in data["scores"]["graders"]}:
                data["scores"]["graders"].append({"name": key, "type": "sub_grader", "valid_reward_mean": value})
        n_valid = summary["reward"]["n_samples"]
        usage.update({"valid_reasoning_tokens_mean": summary["tokens"]["reasoning_mean"],
                      "valid_reasoning_tokens_count": summary["tokens"]["reasoning_mean"] * n_valid})
        for kind in ERROR_KINDS:
            count = summary["errors"]["by_kind"].get(kind, 0)
            if kind == "sample_parse_error":  # flagged by the grader or by the engine: the larger count
                count = max(count, round(summary["errors"]["sample_parse_error_rate"] * n_valid))
            grader_errors[f"valid_{kind}_count"] = count
            grader_errors[f"valid_{kind}_mean"] = count / max(1, n_valid)
        grader_timing["valid_execution_latency_mean"] = summary["latency"]["grader_mean_s"]
        data["full_valid_mean_reward"] = valid
        data["full_valid_mean_parse_error"] = summary["errors"]["sample_parse_error_rate"]
        data["valid_reasoning_tokens_mean"] = summary["tokens"]["reasoning_mean"]
        data["valid"] = {"reward_mean": valid, "ci95": summary["reward"]["ci95"],
                         "run_to_run_std": summary["reward"]["run_to_run_std"],
                         "headroom": summary["reward"]["headroom"],
                         "completion_tokens_mean": summary["tokens"]["completion_mean"]}
        if "classification" in summary:
            data["valid"].update({k: summary["classification"]["micro"][k] for k in ("precision", "recall", "f1")})
            data["valid"]["macro_f1"] = summary["classification"]["macro"]["f1"]
            data["valid"]["predicted_label_counts"] = {label: v["predicted"] for label, v in
                                                       summary["classification"]["per_label"].items()}
            data["valid"]["baselines"] = {name: {"reward": b["reward"]["mean"], **b["classification"]["micro"]}
                                          for name, b in summary.get("baselines", {}).items()}
    graders_usage = []
    if rollouts:  # the training batch's judge-model tokens per grader (the service adds the validation's)
        from openrft.graders.usage import grader_usage_entries, model_usage

        grades = [g for r in rollouts for g in r.grades[0]]
        graders_usage = [{k: v for k, v in entry.items() if k.startswith("train_")} for entry in
                         grader_usage_entries(grader_spec, {"train": {"samples": len(grades),
                                                                      "models": model_usage(grades)}})]
    data["usage"] = {"samples": usage, "graders": graders_usage}
    data["errors"] = {"graders": [grader_errors]}
    data["timing"] = {"step": {k: timing.get(k, 0.0) for k in ("sampling", "training", "eval", "full_iteration")},
                      "graders": [grader_timing]}
    if stats:
        data.setdefault("train", {}).update(stats)
    return data


def _sub_means(grades) -> dict:
    keys = {k for g in grades for k in (g.sub_rewards or {})}
    return {k: mean(float(g.sub_rewards.get(k, 0.0)) for g in grades) for k in sorted(keys)}


def _message(step, total, rollouts, summary) -> str:
    parts = [f"Step {step}/{total}"]
    if rollouts:
        parts.append(f"train mean reward={mean(g.reward for r in rollouts for g in r.grades[0]):.2f}")
    if summary:
        parts.append(f"full validation mean reward={summary['reward']['mean']:.2f}")
        parts.append(f"full validation mean parse error={summary['errors']['sample_parse_error_rate']:.2f}")
    return " , ".join(parts)


def _guards(history: list[dict], reference_freq: dict | None) -> list[dict]:
    """Reward-hacking and health guards (openrft.doctor.guards) on the metrics so far; never fail a step."""
    try:
        from openrft.doctor.guards import check_step
    except ImportError:
        return []
    return check_step(history, reference_label_freq=reference_freq)


def _label_freq(rows: list[dict], key: str | None) -> dict | None:
    if not key:
        return None
    counts = Counter(label for r in rows for label in (r.get(key) or []) if isinstance(r.get(key), list))
    total = sum(counts.values()) if counts else 0
    return {label: c / total for label, c in counts.items()} if total else None


def _stop(run_dir, job, log, action, model, tokenizer, optimizer, step, best, trained_tokens, spec, ft_name, dist,
          trackers):
    if dist.main:
        save_state(run_dir, model, optimizer, {"step": step, "best_valid": best, "trained_tokens": trained_tokens})
        if trackers:
            trackers.close()
    if action == "pause":
        if dist.main and step > 0:
            write_checkpoint(run_dir, _unwrap(model), tokenizer, step=step, base_model=checkpoint_base(spec.model),
                             job_id=job["id"], checkpoint_model=checkpoint_name(ft_name, step), metrics={"step": step})
        job["status"] = "paused"
        if dist.main:
            save_job(run_dir, job)
            log.emit(f"Fine-tuning job paused at step {step}")
        return job
    if action == "interrupt":
        job["status"] = "queued"  # resumable: `openrft train --resume RUN_DIR` continues from the state
        if dist.main:
            save_job(run_dir, job)
            log.emit(f"Fine-tuning job interrupted at step {step}; resume with `openrft train --resume {run_dir}`",
                     level="warn")
        return job
    return _finish(run_dir, job, log, "cancelled")


def _finish(run_dir, job, log, status, error=None) -> dict:
    job["status"] = status
    job["finished_at"] = int(time.time())
    if error:
        job["error"] = error
        log.emit(f"Fine-tuning job failed: {error['message']}", level="error")
    elif status == "succeeded":
        log.emit("The job has successfully completed")
    elif status == "cancelled":
        log.emit("Fine-tuning job cancelled")
    save_job(run_dir, job)
    return job


def _report(run_dir: Path, log: EventLog) -> None:
    try:
        from openrft.dashboard import build_report
    except ImportError:
        return
    try:
        path = build_report(run_dir)
        log.emit(f"Report written: {path}")
    except Exception as exc:  # a report is a convenience; it never fails a finished job
        log.emit(f"Report could not be written: {exc}", level="warn")


def _unwrap(model):
    return getattr(model, "module", model)


class _SignalStop:
    """Ctrl-C / SIGTERM stop the job at the next step boundary with its state saved (a second Ctrl-C kills).

    The previous handlers are put back by `restore()` (run_job calls it when the job returns or raises)."""

    def __init__(self):
        self.action = None
        self._previous: dict[int, Any] = {}  # what signal.signal returned: a handler, SIG_DFL or None
        for signum in (signal.SIGTERM, signal.SIGINT):
            try:
                self._previous[signum] = signal.signal(signum, self._handle)
            except ValueError:  # not the main thread (e.g. a server worker thread): the caller's should_stop rules
                break

    def _handle(self, _signum, _frame):
        if self.action:
            raise KeyboardInterrupt
        self.action = "interrupt"

    def restore(self) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous = {}


class _Distributed:
    """Rank, world size and the few collectives the loop needs (a no-op in a single process)."""

    def __init__(self):
        import torch.distributed as td

        self.td = td
        self.active = False
        if not td.is_initialized() and int(__import__("os").environ.get("WORLD_SIZE", "1")) > 1:
            from accelerate import PartialState

            PartialState(cpu=True)  # initialises the process group (gloo on CPU) from the launcher's environment
        self.active = td.is_available() and td.is_initialized()
        self.rank = td.get_rank() if self.active else 0
        self.world = td.get_world_size() if self.active else 1
        self.main = self.rank == 0

    def sum(self, value: float) -> float:
        if not self.active:
            return value
        tensor = torch.tensor([float(value)], dtype=torch.float64)
        self.td.all_reduce(tensor)
        return float(tensor.item())

    def mean(self, count: float, total: float) -> float:
        return self.sum(count) / max(1.0, self.sum(total))

    def all_reduce_grads(self, model) -> None:
        if not self.active:
            return
        for p in model.parameters():
            if p.requires_grad:
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
                self.td.all_reduce(p.grad)

    def barrier(self) -> None:
        if self.active:
            self.td.barrier()
