"""The vLLM engine: a clear error without vLLM; a real run on a CUDA GPU when one is there."""

from __future__ import annotations

import importlib.util

import pytest

from openrft.engines import EngineError, SamplingParams, get_engine

from .conftest import EUROVOC_DOMAINS, EUROVOC_PROMPT, eurovoc_response_format

HAS_VLLM = importlib.util.find_spec("vllm") is not None


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.skipif(HAS_VLLM, reason="vllm is installed here")
def test_without_vllm_the_error_says_how_to_get_it():
    with pytest.raises(EngineError, match=r"vllm is not installed: pip install 'openrft\[vllm\]'"):
        get_engine("default", backend="vllm")


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_VLLM or not cuda_available(), reason="needs vllm and a CUDA GPU")
def test_vllm_samples_the_embedded_model(embedded_model):
    engine = get_engine("default", backend="vllm", gpu_memory_utilization=0.3, max_model_len=2048)
    question = [{"role": "user", "content": "What is the capital of France?"}]
    plain = engine.generate([question], SamplingParams(n=4, max_tokens=16, seed=1))[0]
    assert len(plain) == 4
    assert all(len(s.token_ids) == len(s.logprobs) == s.completion_tokens > 0 for s in plain)
    again = engine.generate([question], SamplingParams(n=4, max_tokens=16, seed=1))[0]
    assert [s.token_ids for s in plain] == [s.token_ids for s in again]

    params = SamplingParams(n=8, max_tokens=192, seed=2, response_format=eurovoc_response_format(),
                            reasoning_effort="low")
    for sample in engine.generate([EUROVOC_PROMPT], params)[0]:
        assert sample.reasoning_text and 0 < sample.reasoning_tokens <= 64 + len("</think>")
        assert sample.parse_error is None, sample.output_text
        assert set(sample.output_json["labels"]) <= set(EUROVOC_DOMAINS)
