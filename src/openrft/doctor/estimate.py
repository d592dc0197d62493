"""How long a job will take on this machine, and how many tokens it will sample and train on.

Measured, not guessed: sampling and grading speed come from the doctor's eval run (the engine and grader
the trainer uses, groups of the job's samples per prompt, the job's max_tokens), and training speed from
timing the trainer's own unit of work on this machine: one forward + backward of
`openrft.training.algorithm.sequence_logprobs` and `clipped_policy_loss` over a real group of sampled
answers, plus one optimizer step. The job's resolved hyperparameters scale these up:

    step        = batch_size × (sampling + grading per group)
                + updates_per_batch × (batch_size × training per group + optimizer step)
    validation  = validation rows × eval_samples × (sampling + 3 × grading per sample)   # + the two baselines
    total       = total_steps × step + validations × validation

It is an estimate: answers change length as the policy learns, and zero-signal groups (skipped by the
trainer) make training cheaper than measured here.
"""

from __future__ import annotations

import os
import time

import torch


def time_training(model, groups: list[tuple[list[int], list[list[int]]]], *, temperature: float,
                  learning_rate: float, repeats: int = 2) -> dict:
    """Seconds for one forward + backward of the policy loss on one group, and for one optimizer step.

    `groups` are (prompt token ids, completion token ids of each sample); `repeats` passes over the first
    groups (cycling when there are fewer) are timed and the fastest is kept, so that the first pass's
    one-time allocations do not count.
    """
    from openrft.training import algorithm

    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters to time a training step with")
    groups = [(prompt, [c for c in completions if c]) for prompt, completions in groups]
    groups = [g for g in groups if g[0] and g[1]]
    if not groups:
        raise ValueError("no sampled answer with tokens to time a training step on")
    optimizer = torch.optim.AdamW(params, lr=learning_rate)
    model.train()
    passes = []
    try:
        optimizer.zero_grad(set_to_none=True)
        for k in range(repeats):
            prompt, completions = groups[k % len(groups)]
            began = time.perf_counter()
            logprobs, mask, _ = algorithm.sequence_logprobs(model, prompt, completions, temperature=temperature,
                                                            with_entropy=True)  # as the first update pass does
            advantages = torch.linspace(-1.0, 1.0, len(completions))
            terms = algorithm.clipped_policy_loss(logprobs, logprobs.detach(), advantages, mask, clip_epsilon=0.2,
                                                  total_tokens=int(mask.sum()))
            terms.loss.backward()
            passes.append(time.perf_counter() - began)
        began = time.perf_counter()
        optimizer.step()
        optimizer_s = time.perf_counter() - began
    finally:
        optimizer.zero_grad(set_to_none=True)
        model.eval()
    return {"group_s": min(passes), "optimizer_s": optimizer_s, "passes_s": passes}


def job_estimate(*, total_steps: int, batch_size: int, group_size: int, updates_per_batch: int,
                 eval_interval: int, eval_samples: int, validate_at_start: bool, n_valid: int,
                 sampling_group_s: float, grading_group_s: float, training_group_s: float, optimizer_s: float,
                 completion_tokens_mean: float, prompt_tokens_mean: float, device: str | None = None) -> dict:
    """The job's time and tokens from measured per-group speeds (see the module docstring)."""
    sampling = batch_size * sampling_group_s
    grading = batch_size * grading_group_s
    training = updates_per_batch * (batch_size * training_group_s + optimizer_s)
    step_s = sampling + grading + training
    validations = 0
    if n_valid > 0:
        validations = sum(1 for s in range(1, total_steps + 1) if s % eval_interval == 0 or s == total_steps)
        validations += 1 if validate_at_start else 0
    per_sample = (sampling_group_s + 3 * grading_group_s) / max(1, group_size)
    validation_s = n_valid * eval_samples * per_sample
    train_samples = total_steps * batch_size * group_size
    valid_samples = validations * n_valid * eval_samples
    return {
        "device": device or describe_device(),
        "load_average": _load_average(),
        "cpu_count": os.cpu_count(),
        "total_steps": total_steps, "validations": validations,
        "per_step_s": {"sampling": sampling, "grading": grading, "training": training, "total": step_s},
        "validation_s": validation_s,
        "total_s": total_steps * step_s + validations * validation_s,
        "measured": {"sampling_group_s": sampling_group_s, "grading_group_s": grading_group_s,
                     "training_group_s": training_group_s, "optimizer_s": optimizer_s,
                     "completion_tokens_mean": completion_tokens_mean, "prompt_tokens_mean": prompt_tokens_mean},
        "tokens": {"sampled": (train_samples + valid_samples) * completion_tokens_mean,
                   "prompt": (train_samples + valid_samples) * prompt_tokens_mean,
                   "trained": train_samples * completion_tokens_mean},
    }


def describe_device(device: str = "cpu") -> str:
    """This machine in words: the CPU thread count torch uses, or the GPU's name."""
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(torch.device(device))}"
    return f"this CPU ({torch.get_num_threads()} threads of {os.cpu_count()} cores)"


def _load_average() -> float | None:
    """The 1-minute load average: other work on the machine slows every measurement down."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None
