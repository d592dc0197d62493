"""The sampling distribution, written once: the engine draws from it and the trainer differentiates it.

A token is drawn from

    p(t) ∝ exp(logit_t / T)   for t allowed by the constraint (grammar, label trie), 0 otherwise,

then restricted to the top_p nucleus of that distribution and renormalised. `sampling_logprobs` returns
log p for every vocabulary entry (−inf outside the support). The transformers engine records
`log p(token)` for each sampled token, and the trainer recomputes it with the same function over the same
masks (rebuilt by replaying each sample's constraint, see constraints.py). So the log-probability in the
loss and in the importance ratio is that of the distribution the token came from: a token the grammar
forced has log-probability 0 and no gradient, as it should.

Random draws come from one stream per (item, sample): `item_streams` seeds a generator from the call's seed,
the prompt's token ids and the sample's index, so an item's samples do not depend on its position in the
batch or on the other items of the call.
"""

from __future__ import annotations

import hashlib
import random

import torch

_BITS = torch.arange(32, dtype=torch.int32)


def unpack_bitmask(bitmask: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """xgrammar's packed int32 bitmask [..., ceil(V/32)] as a bool mask [..., V] (True = allowed)."""
    bits = (bitmask.unsqueeze(-1) >> _BITS.to(bitmask.device)) & 1
    return bits.reshape(*bitmask.shape[:-1], -1)[..., :vocab_size].bool()


def pack_bitmask(mask: torch.Tensor) -> torch.Tensor:
    """A bool mask [..., V] packed into xgrammar's int32 layout [..., ceil(V/32)] (the inverse of unpack)."""
    import numpy as np

    words = (mask.shape[-1] + 31) // 32
    bits = np.zeros((*mask.shape[:-1], words * 32), dtype=bool)
    bits[..., :mask.shape[-1]] = mask.cpu().numpy()
    return torch.from_numpy(np.packbits(bits, axis=-1, bitorder="little").view("<i4").copy())


def sampling_logprobs(logits: torch.Tensor, *, temperature: float, top_p: float = 1.0,
                      allowed: torch.Tensor | None = None, always_keep: torch.Tensor | None = None) -> torch.Tensor:
    """log p of the sampling distribution over the last dimension of `logits` (see the module docstring).

    `allowed`: bool mask of the same shape (None = everything allowed). `always_keep`: token ids [...] that
    stay in the top_p nucleus whatever their rank (the trainer passes the sampled tokens, so that a token
    at the nucleus boundary in the sampler is never cut by a rounding difference). Temperature 0 (greedy)
    is scored at temperature 1. Differentiable; the nucleus is chosen without gradient.
    """
    scaled = logits.float()
    if temperature not in (0, 1):
        scaled = scaled / temperature
    if allowed is not None:
        scaled = scaled.masked_fill(~allowed, float("-inf"))
    logprobs = torch.log_softmax(scaled, dim=-1)
    if top_p >= 1:
        return logprobs
    with torch.no_grad():
        ordered, order = logprobs.exp().sort(dim=-1, descending=True)
        before = ordered.cumsum(dim=-1) - ordered  # mass of the tokens ranked above each one
        keep = torch.zeros_like(logprobs, dtype=torch.bool).scatter_(-1, order, before < top_p)
        if always_keep is not None:
            keep.scatter_(-1, always_keep.unsqueeze(-1), True)
    return torch.log_softmax(scaled.masked_fill(~keep, float("-inf")), dim=-1)


def item_streams(seed: int, prompts: list[list[int]], n: int) -> list[random.Random]:
    """One random stream per (prompt, sample), row-major (prompt i's sample k at i * n + k).

    A stream's seed is a hash of the call's `seed`, the prompt's token ids, the sample index k and how many
    earlier prompts of the call had the same tokens: reordering the prompts of a call, or adding others,
    leaves each prompt's draws unchanged.
    """
    seen: dict[bytes, int] = {}
    streams = []
    for ids in prompts:
        key = b",".join(str(t).encode() for t in ids)
        occurrence = seen.get(key, 0)
        seen[key] = occurrence + 1
        for k in range(n):
            digest = hashlib.blake2b(f"{seed}:{k}:{occurrence}:".encode() + key, digest_size=16).digest()
            streams.append(random.Random(int.from_bytes(digest, "little")))
    return streams
