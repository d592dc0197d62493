"""A tiny random-initialised Llama with a small tokenizer trained from the embedded model's (same byte-level BPE
pipeline, special tokens and chat template; 389 tokens instead of 49152, so that a GGUF file's vocabulary parses
in milliseconds), and a LoRA checkpoint over it whose adapter changes the model's answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

PROMPTS = [[{"role": "user", "content": "Name a colour."}],
           [{"role": "user", "content": "What is 2 + 2?"}],
           [{"role": "system", "content": "Answer in JSON."}, {"role": "user", "content": "Give me a fruit."}]]


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory, embedded_model) -> Path:
    """A 2-layer Llama (hidden 64, 4 heads, 2 KV heads, tied embeddings) saved as a Hugging Face folder."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = small_tokenizer(embedded_model)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         rms_norm_eps=1e-5, tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    with torch.no_grad():  # larger weights than the init's: logits with clear winners, greedy answers stable
        for param in model.parameters():
            if param.ndim == 2:
                param.normal_(0, 0.2)
    path = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


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


CORPUS = ["Name a colour. What is 2 + 2? Give me a fruit. Answer in JSON. Hello world! numbers 12345 and tags.",
          "You are a helpful AI assistant named SmolLM, trained by Hugging Face", "system user assistant"] * 20


def small_tokenizer(embedded_model: Path):
    """The embedded model's tokenizer retrained on CORPUS: its pre-tokenizer, special tokens and chat template."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(embedded_model).train_new_from_iterator(CORPUS, vocab_size=400)


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
