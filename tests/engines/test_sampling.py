"""The sampling distribution is what the trainer differentiates: masked log-probabilities, canonical labels,
uniqueItems, and one random stream per item (openrft.engines.sampling, openrft.engines.constraints)."""

from __future__ import annotations

import random

import pytest
import torch

from openrft.engines.base import SamplingParams
from tests.engines.conftest import EUROVOC_DOMAINS, EUROVOC_PROMPT, trainer_logprobs


def labels_format(max_items: int = 5) -> dict:
    labels = {"type": "array", "items": {"type": "string", "enum": EUROVOC_DOMAINS}, "minItems": 1,
              "maxItems": max_items, "uniqueItems": True}
    schema = {"type": "object", "properties": {"labels": labels}, "required": ["labels"], "additionalProperties": False}
    return {"type": "json_schema", "json_schema": {"name": "eurovoc_domains", "strict": True, "schema": schema}}


def test_bitmask_packing_round_trips():
    from openrft.engines.sampling import pack_bitmask, unpack_bitmask

    mask = torch.rand(3, 70) > 0.5
    assert torch.equal(unpack_bitmask(pack_bitmask(mask), 70), mask)


def test_the_engine_draws_from_the_masked_softmax(engine):
    """Chi-square test of the sampler's token frequencies at one step against softmax(logits / T) over the
    allowed tokens; every drawn token is allowed and its recorded log-probability is the masked one."""
    from scipy.stats import chisquare

    from openrft.engines.sampling import pack_bitmask

    vocab, draws, temperature = engine.vocab_size, 20_000, 0.8
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(vocab, generator=gen) * 2
    allowed_ids = torch.randperm(vocab, generator=gen)[:12]
    mask = torch.zeros(vocab, dtype=torch.bool)
    mask[allowed_ids] = True
    rng = random.Random(1)
    tokens, logprobs = engine._draw(logits.expand(draws, vocab), SamplingParams(temperature=temperature),
                                    [rng.random() for _ in range(draws)],
                                    allowed=pack_bitmask(mask).expand(draws, -1))
    assert bool(mask[tokens].all())
    expected = torch.softmax(logits[allowed_ids] / temperature, -1).double()
    counts = torch.stack([(tokens == t).sum() for t in allowed_ids]).double()
    expected_counts = (expected / expected.sum() * counts.sum()).numpy()
    assert chisquare(counts.numpy(), expected_counts).pvalue > 1e-3
    position = {int(t): i for i, t in enumerate(allowed_ids)}
    recorded = torch.tensor([float(expected[position[int(t)]].log()) for t in tokens[:50]])
    assert torch.allclose(logprobs[:50].double(), recorded.double(), atol=1e-5)


def test_masked_logprob_gradient_equals_an_explicit_reference(embedded_model):
    """The trainer's log-probabilities and their gradient under per-token masks equal an explicit reference:
    logit_t / T − logsumexp over the allowed tokens, from a plain full forward, through autograd."""
    from openrft.models import load_model
    from openrft.training import algorithm

    model, tok = load_model("default")
    prompt = tok.apply_chat_template([{"role": "user", "content": "Name a fruit."}], add_generation_prompt=True,
                                     tokenize=True, return_dict=True)["input_ids"]
    completions = [tok.encode("Apple pie"), tok.encode("Mango")]
    vocab = model.get_output_embeddings().weight.shape[0]
    gen = torch.Generator().manual_seed(0)
    masks = []
    for c in completions:
        m = torch.rand(len(c), vocab, generator=gen) < 0.01
        m[torch.arange(len(c)), torch.tensor(c)] = True
        masks.append(m)
    weight = model.model.layers[-1].mlp.down_proj.weight
    temperature = 0.7

    logp, mask, _ = algorithm.sequence_logprobs(model, prompt, completions, temperature=temperature, masks=masks)
    (grad,) = torch.autograd.grad((logp * mask).sum(), weight)

    reference = []
    for c, m in zip(completions, masks):
        logits = model(torch.tensor([prompt + c])).logits[0, len(prompt) - 1:-1].float() / temperature
        for t, token in enumerate(c):
            allowed = torch.nonzero(m[t])[:, 0]
            reference.append(logits[t, token] - torch.logsumexp(logits[t, allowed], dim=0))
    reference = torch.stack(reference)
    (ref_grad,) = torch.autograd.grad(reference.sum(), weight)
    assert torch.allclose(torch.cat([logp[i, :len(c)] for i, c in enumerate(completions)]).detach(),
                          reference.detach(), atol=1e-4)
    # Equal up to float32 summation order (a padded batch vs one sequence at a time): relative to the gradient's
    # norm, about 3e-6 here; an element-wise rtol fails on the odd element near 0.
    assert float((grad - ref_grad).norm() / ref_grad.norm()) < 1e-4
    unmasked, _, _ = algorithm.sequence_logprobs(model, prompt, completions, temperature=temperature)
    (unmasked_grad,) = torch.autograd.grad((unmasked * mask).sum(), weight)
    assert float((unmasked_grad - ref_grad).norm() / ref_grad.norm()) > 1e-2  # the test can tell the two apart


def test_trainer_logprobs_of_constrained_samples_equal_the_samplers(engine):
    """Replaying each sample's constraint, the trainer recomputes the sampler's log-probabilities within 1e-4
    per token; the unmasked recomputation (the old trainer) is far off."""
    params = SamplingParams(n=6, temperature=1.0, max_tokens=48, seed=3, response_format=labels_format())
    samples = engine.generate([EUROVOC_PROMPT], params)[0]
    logp, mask, unmasked = trainer_logprobs(engine, samples)
    gaps, old_gaps = [], []
    for i, s in enumerate(samples):
        sampler = torch.tensor(s.logprobs)
        gaps.append((logp[i, :len(s.token_ids)] - sampler).abs().max().item())
        old_gaps.append((unmasked[i, :len(s.token_ids)] - sampler).abs().sum().item())
    assert max(gaps) < 1e-4, gaps
    assert min(old_gaps) > 1.0, old_gaps  # nats per sample


def test_labels_are_written_with_their_own_tokens_and_never_repeated(engine):
    from openrft.engines.constraints import vocabulary

    params = SamplingParams(n=16, temperature=1.0, max_tokens=64, seed=11, response_format=labels_format())
    samples = engine.generate([EUROVOC_PROMPT], params)[0]
    vocab = vocabulary(engine.tokenizer, engine.vocab_size)
    finished = [s for s in samples if s.finish_reason == "stop"]
    assert len(finished) >= 14
    for s in finished:
        assert s.parse_error is None, s.output_text
        labels = s.output_json["labels"]
        assert len(labels) == len(set(labels)), labels
        for label in labels:
            ids = vocab.canonical(label)
            assert any(s.token_ids[i:i + len(ids)] == ids for i in range(len(s.token_ids))), (label, s.token_ids)


def test_every_domain_has_a_canonical_tokenization(engine):
    from openrft.engines.constraints import enum_sites, vocabulary

    vocab = vocabulary(engine.tokenizer, engine.vocab_size)
    for label in EUROVOC_DOMAINS:
        ids = vocab.canonical(label)
        assert ids and engine.tokenizer.decode(ids) == label
    sites = enum_sites(labels_format()["json_schema"]["schema"], vocab)
    assert [(site.path, site.unique) for site in sites] == [(("labels", "*"), True)]


def test_an_items_samples_do_not_depend_on_its_place_in_the_batch(engine):
    prompts = [[{"role": "user", "content": f"Write a word about {topic}."}] for topic in ("the sea", "bread", "rain")]
    params = SamplingParams(n=3, temperature=1.0, max_tokens=12, seed=5)
    first = engine.generate(prompts, params)
    again = engine.generate([prompts[2], prompts[0]], params)
    assert [s.token_ids for s in again[0]] == [s.token_ids for s in first[2]]
    assert [s.token_ids for s in again[1]] == [s.token_ids for s in first[0]]
    assert [s.token_ids for s in first[0]] != [s.token_ids for s in first[2]]
    other_seed = engine.generate([prompts[0]], SamplingParams(n=3, temperature=1.0, max_tokens=12, seed=6))
    assert [s.token_ids for s in other_seed[0]] != [s.token_ids for s in first[0]]


@pytest.mark.parametrize("top_p", [0.5])
def test_top_p_is_part_of_the_distribution_the_trainer_scores(engine, top_p):
    from openrft.training import algorithm

    params = SamplingParams(n=4, temperature=1.0, top_p=top_p, max_tokens=16, seed=2)
    samples = engine.generate([EUROVOC_PROMPT], params)[0]
    with torch.no_grad():
        logp, _, _ = algorithm.sequence_logprobs(engine.model, samples[0].prompt_token_ids,
                                                 [s.token_ids for s in samples], temperature=1.0, top_p=top_p,
                                                 masks=[engine.replay_masks(s) for s in samples])
    for i, s in enumerate(samples):
        assert (logp[i, :len(s.token_ids)] - torch.tensor(s.logprobs)).abs().max() < 1e-4
