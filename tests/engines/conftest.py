"""Fixtures of the engine tests: one embedded-model engine per session, the EuroVoc schema."""

from __future__ import annotations

import pytest

# The 21 EuroVoc level-1 domains (as in shared/data/eurovoc/labels.json), so that these tests run without it.
EUROVOC_DOMAINS = [
    "politics", "international relations", "European Union", "law", "economics", "trade", "finance",
    "social questions", "education and communications", "science", "business and competition",
    "employment and working conditions", "transport", "environment", "agriculture, forestry and fisheries",
    "agri-foodstuffs", "production, technology and research", "energy", "industry", "geography",
    "international organisations",
]


def eurovoc_response_format(max_items: int | None = 7) -> dict:
    """OpenAI's response_format for `{"labels": [domain, ...]}` (documents carry 1-7 domains)."""
    labels = {"type": "array", "items": {"type": "string", "enum": EUROVOC_DOMAINS}}
    if max_items is not None:
        labels["maxItems"] = max_items
    schema = {"type": "object", "properties": {"labels": labels}, "required": ["labels"],
              "additionalProperties": False}
    return {"type": "json_schema", "json_schema": {"name": "eurovoc_domains", "strict": True, "schema": schema}}


EUROVOC_PROMPT = [
    {"role": "system", "content": "You classify EU legal acts into EuroVoc domains. Domains: "
     + "; ".join(EUROVOC_DOMAINS) + '. Answer with JSON: {"labels": [...]}.'},
    {"role": "user", "content": "Commission Regulation fixing the fishing quotas for cod and herring in the "
     "Baltic Sea for 2006 and amending the rules on fishing vessels."},
]


def trainer_logprobs(engine, samples):
    """What the trainer recomputes for one prompt's samples: (log-probabilities under each sample's replayed
    constraint masks, their completion mask, unmasked log-probabilities as the trainer before issue 14 had them).
    Also checks that every sample's masks replay, one row per sampled token."""
    import torch

    from openrft.training import algorithm

    masks = [engine.replay_masks(s) for s in samples]
    assert all(m is not None and m.shape[0] == len(s.token_ids) for m, s in zip(masks, samples))
    prompt, completions = samples[0].prompt_token_ids, [s.token_ids for s in samples]
    with torch.no_grad():
        logp, mask, _ = algorithm.sequence_logprobs(engine.model, prompt, completions, temperature=1.0, masks=masks)
        unmasked, _, _ = algorithm.sequence_logprobs(engine.model, prompt, completions, temperature=1.0)
    return logp, mask, unmasked


@pytest.fixture(scope="session")
def engine(embedded_model):
    """The embedded model behind the transformers engine (loaded once for all engine tests), in float32: the
    tests that compare the sampler's log-probabilities with the trainer's within 1e-4 need it (on a CPU with
    native bf16, `default_dtype` would pick bf16, where the two forward passes differ by up to 0.2 nats)."""
    from openrft.engines.transformers import TransformersEngine

    return TransformersEngine.from_name("default", dtype="float32")
