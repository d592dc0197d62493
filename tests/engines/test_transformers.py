"""The transformers engine on the embedded model: log-probabilities, reproducibility, stop rules, live weights."""

from __future__ import annotations

import pytest
import torch

from openrft.engines import EngineError, SamplingParams
from openrft.engines.transformers import TransformersEngine

SHORT = [{"role": "user", "content": "What is the capital of France?"}]
LONGER = [{"role": "system", "content": "You are a helpful assistant who answers in full sentences."},
          {"role": "user", "content": "Name three rivers that flow through Germany and say where they end."}]


def forward_logprobs(model, sample, temperature: float) -> list[float]:
    """log_softmax(logits / T)[token] of each completion token, from one forward pass over prompt + completion."""
    ids = torch.tensor([sample.prompt_token_ids + sample.token_ids])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0].float()
    logprobs = torch.log_softmax(logits / (temperature or 1.0), dim=-1)
    start = len(sample.prompt_token_ids) - 1
    return [logprobs[start + i, token].item() for i, token in enumerate(sample.token_ids)]


def test_samples_carry_tokens_and_the_logprobs_a_forward_pass_gives(engine):
    params = SamplingParams(n=2, temperature=0.7, max_tokens=10, seed=3)
    results = engine.generate([SHORT, LONGER], params)  # different lengths: the short prompt is left-padded
    assert [len(samples) for samples in results] == [2, 2]
    for index, samples in enumerate(results):
        for sample in samples:
            assert sample.prompt_index == index
            assert sample.completion_tokens == len(sample.token_ids) == len(sample.logprobs) > 0
            assert sample.prompt_tokens == len(sample.prompt_token_ids)
            assert sample.finish_reason in ("stop", "length")
            assert sample.model == "default" and sample.latency_s > 0
            expected = forward_logprobs(engine.model, sample, 0.7)
            assert sample.logprobs == pytest.approx(expected, abs=2e-3)


def test_greedy_decoding_matches_model_generate(engine):
    sample = engine.generate([LONGER], SamplingParams(n=1, temperature=0, max_tokens=12))[0][0]
    ids = torch.tensor([sample.prompt_token_ids])
    with torch.no_grad():
        reference = engine.model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                          max_new_tokens=12, pad_token_id=engine.pad_token_id)
    assert sample.token_ids == reference[0, ids.shape[1]:].tolist()
    # at temperature 0 the log-probabilities are those of the temperature-1 distribution
    assert sample.logprobs == pytest.approx(forward_logprobs(engine.model, sample, 1.0), abs=2e-3)


def test_the_same_seed_gives_the_same_samples(engine):
    params = SamplingParams(n=3, temperature=1.0, max_tokens=8, seed=11)
    first = engine.generate([SHORT], params)[0]
    again = engine.generate([SHORT], params)[0]
    other = engine.generate([SHORT], SamplingParams(n=3, temperature=1.0, max_tokens=8, seed=12))[0]
    assert [s.token_ids for s in first] == [s.token_ids for s in again]
    assert [s.token_ids for s in first] != [s.token_ids for s in other]
    assert len({tuple(s.token_ids) for s in first}) > 1  # the n samples of a prompt differ


def test_prefix_sharing_gives_the_samples_of_a_plain_kv_cache(engine):
    plain = TransformersEngine(engine.model, engine.tokenizer, model_name="default", share_prefix=False)
    params = SamplingParams(n=2, temperature=1.0, max_tokens=8, seed=5)
    shared = engine.generate([SHORT, LONGER], params)
    reference = plain.generate([SHORT, LONGER], params)
    for got, want in zip(shared, reference):
        assert [s.token_ids for s in got] == [s.token_ids for s in want]
        for a, b in zip(got, want):
            assert a.logprobs == pytest.approx(b.logprobs, abs=1e-3)


INSTRUCTIONS = ("You classify EU legal acts into EuroVoc domains: politics, law, trade, finance, transport, "
                "energy. Answer with the domains only. Act: ")
ACTS = [[{"role": "user", "content": INSTRUCTIONS + act}] for act in
        ("Fishing quotas for cod in the Baltic Sea.", "A regulation on rail freight tariffs and road tolls.",
         "Electricity market directive.")]


def test_shared_instructions_are_prefilled_once_and_change_no_distribution(engine):
    """The prompts' common leading tokens are one cache entry for the call; greedy answers are those of whole
    prompts and every sampled token's log-probability is that of a forward pass over the whole sequence."""
    from openrft.engines import kv
    from openrft.engines.transformers import _Prompt

    apart = TransformersEngine(engine.model, engine.tokenizer, model_name="default", share_instructions=False)
    ids = [engine.tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=True,
                                                return_dict=True)["input_ids"] for p in ACTS]
    with torch.no_grad(), kv.shared_prefix_attention(engine.model):
        instructions = engine._instructions([_Prompt(i, t, None) for i, t in enumerate(ids)])
    assert instructions is not None and instructions.length >= 20  # the chat header and the instructions
    assert all(t[:instructions.length] == ids[0][:instructions.length] for t in ids)
    greedy = SamplingParams(n=2, temperature=0, max_tokens=10)
    assert ([[s.token_ids for s in group] for group in engine.generate(ACTS, greedy)]
            == [[s.token_ids for s in group] for group in apart.generate(ACTS, greedy)])
    for group in engine.generate(ACTS, SamplingParams(n=2, temperature=1.0, max_tokens=10, seed=7)):
        for sample in group:
            assert sample.prompt_token_ids[:instructions.length] == ids[0][:instructions.length]
            assert sample.logprobs == pytest.approx(forward_logprobs(engine.model, sample, 1.0), abs=1e-4)


def test_finish_reasons(engine):
    cut = engine.generate([LONGER], SamplingParams(n=2, max_tokens=3, seed=1))[0]
    assert all(s.finish_reason == "length" and s.completion_tokens == 3 for s in cut)
    question = [{"role": "user", "content": "What is 2 + 2? Reply with just the number."}]
    done = engine.generate([question], SamplingParams(n=1, temperature=0, max_tokens=40))[0][0]
    assert done.finish_reason == "stop"
    assert done.token_ids[-1] in engine.stop_token_ids
    assert "<|im_end|>" not in done.output_text and done.output_text


def test_min_tokens_suppresses_the_end_of_sequence(engine):
    question = [{"role": "user", "content": "What is 2 + 2? Reply with just the number."}]
    samples = engine.generate([question], SamplingParams(n=2, temperature=0, max_tokens=12, min_tokens=12))[0]
    for sample in samples:
        assert sample.completion_tokens == 12
        assert not set(sample.token_ids[:-1]) & set(engine.stop_token_ids)


def test_a_tiny_top_p_keeps_only_the_most_likely_token(engine):
    greedy = engine.generate([SHORT], SamplingParams(n=1, temperature=0, max_tokens=8))[0][0]
    nucleus = engine.generate([SHORT], SamplingParams(n=2, temperature=1.0, top_p=1e-6, max_tokens=8, seed=4))[0]
    assert all(s.token_ids == greedy.token_ids for s in nucleus)


@pytest.mark.parametrize("params, field", [
    (SamplingParams(n=0), "n"), (SamplingParams(top_p=0.0), "top_p"), (SamplingParams(temperature=-1), "temperature"),
    (SamplingParams(max_tokens=0), "max_tokens"), (SamplingParams(reasoning_effort="extreme"), "reasoning_effort"),
])
def test_bad_sampling_parameters_are_named(engine, params, field):
    with pytest.raises(EngineError, match=field):
        engine.generate([SHORT], params)


def test_a_peft_policy_is_sampled_with_its_current_weights(embedded_model):
    """The trainer's case: the engine wraps a live LoRA policy; an update must show in the next samples."""
    from openrft.models import add_lora, load_model

    base, tokenizer = load_model("default")
    policy = add_lora(base, rank=4, alpha=8, dropout=0.1, target_modules=["q_proj", "v_proj"])
    policy.train()
    engine = TransformersEngine(policy, tokenizer, model_name="policy")
    params = SamplingParams(n=1, temperature=0, max_tokens=6)

    before = engine.generate([LONGER], params)[0][0]
    assert policy.training and all(m.training for m in policy.modules())  # train mode restored
    with torch.no_grad():  # an "optimizer step": move every LoRA B matrix
        for name, parameter in policy.named_parameters():
            if "lora_B" in name:
                parameter.add_(torch.randn_like(parameter) * 0.05)
    after = engine.generate([LONGER], params)[0][0]

    policy.eval()
    assert after.logprobs == pytest.approx(forward_logprobs(policy, after, 1.0), abs=2e-3)
    assert after.logprobs[0] != pytest.approx(before.logprobs[0], abs=1e-4)
