"""Shared test fixtures: one data directory per checkout, the embedded model, the real data folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Keep the converted embedded model between test runs (the conversion takes ~30 s); tests that write
# runs, files or a store use their own tmp_path through the `home` fixture.
os.environ.setdefault("OPENRFT_HOME", str(REPO / ".openrft-test"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def pytest_collection_modifyitems(config, items):
    if os.environ.get("OPENRFT_SLOW") == "1" or "slow" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="slow test: run with OPENRFT_SLOW=1 or -m slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def embedded_model() -> Path:
    """The embedded default model, converted once into the shared cache."""
    from openrft.models import resolve_model

    return resolve_model("default").path


@pytest.fixture()
def home(tmp_path, monkeypatch, embedded_model) -> Path:
    """A private OPENRFT_HOME for one test, sharing the converted model cache."""
    path = tmp_path / "home"
    (path / "models").mkdir(parents=True)
    (path / "models" / embedded_model.name).symlink_to(embedded_model)
    monkeypatch.setenv("OPENRFT_HOME", str(path))
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real labelled data folder; tests that need it skip when it is absent."""
    from openrft.paths import shared_data_dir

    path = shared_data_dir()
    if path is None:
        pytest.skip("real data folder not found: set OPENRFT_DATA_DIR or put shared/data beside the checkout")
    return path


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory, embedded_model) -> Path:
    """A 2-layer Llama (hidden 64, 4 heads, 2 KV heads, tied embeddings) saved as a Hugging Face folder, with a
    small tokenizer trained from the embedded model's (the same byte-level BPE pipeline, special tokens and chat
    template; 389 tokens instead of 49152, so that a GGUF file's vocabulary parses in milliseconds): a few MB where
    a test needs a real model folder but not the embedded model's weights."""
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


CORPUS = ["Name a colour. What is 2 + 2? Give me a fruit. Answer in JSON. Hello world! numbers 12345 and tags.",
          "You are a helpful AI assistant named SmolLM, trained by Hugging Face", "system user assistant"] * 20


def small_tokenizer(embedded_model: Path):
    """The embedded model's tokenizer retrained on CORPUS: its pre-tokenizer, special tokens and chat template."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(embedded_model).train_new_from_iterator(CORPUS, vocab_size=400)
