"""A LoRA checkpoint over the tiny random-initialised Llama (`tiny_base`, tests/conftest.py) whose adapter changes
the model's answers, and helpers reading a model's greedy answers and logits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

PROMPTS = [[{"role": "user", "content": "Name a colour."}],
           [{"role": "user", "content": "What is 2 + 2?"}],
           [{"role": "system", "content": "Answer in JSON."}, {"role": "user", "content": "Give me a fruit."}]]


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, tiny_base) -> Path:
    """A LoRA checkpoint over `tiny_base` as the trainer writes one (non-zero B: the adapter changes the model)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from openrft.models import ADAPTER_BASE_FILE, add_lora

    model = AutoModelForCausalLM.from_pretrained(tiny_base)
    model = add_lora(model, rank=8, alpha=16, dropout=0.0,
                     target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    torch.manual_seed(1)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.3)
    path = tmp_path_factory.mktemp("tiny-run") / "checkpoints" / "step-2"
    model.save_pretrained(path)
    AutoTokenizer.from_pretrained(tiny_base).save_pretrained(path)
    (path / ADAPTER_BASE_FILE).write_text(str(tiny_base))
    (path / "checkpoint.json").write_text(json.dumps({"step_number": 2}))
    return path


def greedy(model, tokenizer, prompts=PROMPTS, max_new_tokens: int = 8) -> list[list[int]]:
    """The greedy continuation token ids of each chat prompt."""
    import torch

    answers = []
    for messages in prompts:
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                            return_dict=True)["input_ids"]
        with torch.no_grad():
            out = model.generate(ids, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=0)
        answers.append(out[0, ids.shape[1]:].tolist())
    return answers


def logits(model, tokenizer, prompts=PROMPTS):
    """The last-position logits of each chat prompt, stacked."""
    import torch

    rows = []
    for messages in prompts:
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                            return_dict=True)["input_ids"]
        with torch.no_grad():
            rows.append(model(ids).logits[0, -1].float())
    return torch.stack(rows)
