"""The exported GGUF under llama.cpp itself (llama-cpp-python; skipped when it is not installed: it builds from
source, `pip install llama-cpp-python`): same tokens, same logits and greedy answers as the checkpoint."""

from __future__ import annotations

import numpy as np
import pytest

from .conftest import PROMPTS, greedy

llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")


def test_llama_cpp_loads_the_f32_gguf_with_the_checkpoints_tokens_logits_and_answers(tiny_checkpoint, tmp_path):
    import torch

    from openrft.export import export
    from openrft.models import load_model

    model, tokenizer = load_model(str(tiny_checkpoint))
    model.eval()
    result = export(tiny_checkpoint, "gguf", tmp_path / "tiny.gguf", quant="f32")
    llm = llama_cpp.Llama(model_path=str(result.path), n_ctx=256, logits_all=True, verbose=False, seed=0)
    expected_answers = greedy(model, tokenizer)
    for messages, expected in zip(PROMPTS, expected_answers):
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert llm.tokenize(text.encode(), add_bos=False, special=True) == ids
        llm.reset()
        llm.eval(ids)
        with torch.no_grad():
            reference = model(torch.tensor([ids])).logits[0, -1].numpy()
        np.testing.assert_allclose(np.asarray(llm.scores[len(ids) - 1]), reference, atol=1e-3)
        answer = []
        for _ in range(len(expected)):
            token = int(np.argmax(llm.scores[llm.n_tokens - 1]))
            answer.append(token)
            llm.eval([token])
        assert answer == expected
