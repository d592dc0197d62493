"""Resolving OpenAI's "auto" hyperparameters. Each rule is written down here and in the job's `resolved` block.

OpenAI does not document what "auto" becomes; these rules are ours, chosen for small datasets (tens to
hundreds of rows, the regime RFT is meant for) and stated so that a run can be reproduced:

| key | auto rule |
|---|---|
| batch_size | clamp(n_train // 16, 2, 16) prompts per step |
| n_epochs | clamp(ceil(64 / n_train), 1, 10): small sets get more passes, about 64 prompt visits at least |
| learning_rate_multiplier | 1.0 (base 1e-4 for LoRA, 1e-5 for full fine-tuning, or `openrft.learning_rate`) |
| compute_multiplier | 1.0; samples per prompt = clamp(round(8 × compute_multiplier), 2, 64) |
| eval_interval | max(1, total_steps // 5): about five validations per job |
| eval_samples | 3: enough runs per item to measure run-to-run noise |
| reasoning_effort "default" | no reasoning segment |
| seed (absent) | drawn at random and written into the job |

Supervised (SFT) and DPO jobs follow OpenAI's published rules where there are some:

| key | auto rule (supervised, dpo) |
|---|---|
| batch_size | clamp(round(0.002 × n_train), 1, 256) rows per step (OpenAI: about 0.2% of the rows, at most 256) |
| n_epochs | 3, raised to ceil(100 / n_train) (at most 25) for small sets and lowered to 25000 // n_train |
|          | (at least 1) for large ones (OpenAI's fine-tuning data guide: 100 to 25,000 examples seen) |
| learning_rate_multiplier | 1.0 (base 1e-4 for LoRA, 1e-5 for full fine-tuning, or `openrft.learning_rate`) |
| beta (dpo) | 0.1 (OpenAI's suggested starting point, TRL's default) |
| checkpoints | at the end of every epoch and at the last step, each with a full validation pass |
"""

from __future__ import annotations

import math
import random
from typing import Any

from openrft.spec import DpoHyperparameters, JobSpec

GROUP_SIZE_BASE = 8


def resolve(spec: JobSpec, n_train: int) -> dict:
    if spec.method.type != "reinforcement":
        return resolve_offline(spec, n_train)
    hp = spec.rl.hyperparameters
    ext = spec.openrft
    rules: dict[str, str] = {}

    def pick(key, value, auto_value, rule):
        if value == "auto":
            rules[key] = rule
            return auto_value
        rules[key] = "given"
        return value

    batch_size = pick("batch_size", hp.batch_size, min(16, max(2, n_train // 16)), "clamp(n_train // 16, 2, 16)")
    batch_size = min(batch_size, max(1, n_train))
    n_epochs = pick("n_epochs", hp.n_epochs, min(10, max(1, math.ceil(64 / max(1, n_train)))),
                    "clamp(ceil(64 / n_train), 1, 10)")
    lr_mult = pick("learning_rate_multiplier", hp.learning_rate_multiplier, 1.0, "1.0")
    compute = pick("compute_multiplier", hp.compute_multiplier, 1.0, "1.0")
    group_size = min(64, max(2, round(GROUP_SIZE_BASE * compute)))
    steps_per_epoch = math.ceil(n_train / batch_size)
    total_steps = steps_per_epoch * n_epochs
    if ext.max_steps:
        total_steps = min(total_steps, ext.max_steps)
    eval_interval = pick("eval_interval", hp.eval_interval, max(1, total_steps // 5), "max(1, total_steps // 5)")
    eval_samples = pick("eval_samples", hp.eval_samples, 3, "3")
    base_lr = ext.learning_rate or (1e-4 if ext.finetune == "lora" else 1e-5)
    seed = spec.seed if spec.seed is not None else random.randrange(2**31)
    return {
        "batch_size": batch_size, "n_epochs": n_epochs, "learning_rate_multiplier": lr_mult,
        "compute_multiplier": compute, "eval_interval": eval_interval, "eval_samples": eval_samples,
        "reasoning_effort": hp.reasoning_effort,
        "resolved": {"group_size": group_size, "steps_per_epoch": steps_per_epoch, "total_steps": total_steps,
                     "learning_rate": base_lr * lr_mult, "seed": seed, "rules": rules},
    }


def resolve_offline(spec: JobSpec, n_train: int) -> dict:
    """The hyperparameters of a supervised or dpo job, with the same `resolved` block as an RFT job's."""
    hp = spec.method.block.hyperparameters
    ext = spec.openrft
    rules: dict[str, str] = {}

    def pick(key, value, auto_value, rule):
        rules[key] = rule if value == "auto" else "given"
        return auto_value if value == "auto" else value

    batch_size = pick("batch_size", hp.batch_size, min(256, max(1, round(0.002 * n_train))),
                      "clamp(round(0.002 * n_train), 1, 256)")
    batch_size = min(batch_size, max(1, n_train))
    auto_epochs = 3
    if n_train * auto_epochs < 100:
        auto_epochs = min(25, math.ceil(100 / max(1, n_train)))
    elif n_train * auto_epochs > 25000:
        auto_epochs = max(1, 25000 // n_train)
    n_epochs = pick("n_epochs", hp.n_epochs, auto_epochs, "3, within 100..25000 rows seen (1..25 epochs)")
    lr_mult = pick("learning_rate_multiplier", hp.learning_rate_multiplier, 1.0, "1.0")
    steps_per_epoch = math.ceil(n_train / batch_size)
    total_steps = steps_per_epoch * n_epochs
    if ext.max_steps:
        total_steps = min(total_steps, ext.max_steps)
    base_lr = ext.learning_rate or (1e-4 if ext.finetune == "lora" else 1e-5)
    seed = spec.seed if spec.seed is not None else random.randrange(2**31)
    out: dict[str, Any] = {"batch_size": batch_size, "n_epochs": n_epochs, "learning_rate_multiplier": lr_mult}
    if isinstance(hp, DpoHyperparameters):
        out["beta"] = pick("beta", hp.beta, 0.1, "0.1")
    out["resolved"] = {"steps_per_epoch": steps_per_epoch, "total_steps": total_steps,
                       "eval_interval": min(steps_per_epoch, total_steps), "learning_rate": base_lr * lr_mult,
                       "seed": seed, "rules": rules}
    return out
