"""The policy a job trains: the starting model with fresh LoRA adapters or all weights trainable, and AdamW."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from openrft.spec import OpenrftOptions
from openrft.training.distributed import Distributed


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_policy(model_name: str, ext: OpenrftOptions, learning_rate: float, dist: Distributed):
    """(model, tokenizer, optimizer) of a job: the starting model (a fine-tuned adapter merged into its base:
    openrft.models.load_start_model), with fresh LoRA adapters or all weights trainable, and AdamW."""
    from openrft.models import add_lora, load_start_model

    device = ext.device
    if device == "cuda" and dist.active:  # one GPU per process
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    model, tokenizer = load_start_model(model_name, dtype=ext.precision, device=device)
    if ext.finetune == "lora":
        model = add_lora(model, rank=ext.lora_rank, alpha=ext.lora_alpha, dropout=ext.lora_dropout,
                         target_modules=ext.lora_target_modules)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=learning_rate, weight_decay=ext.weight_decay)
    return model, tokenizer, optimizer
