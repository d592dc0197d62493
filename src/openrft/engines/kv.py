"""Prefix sharing for `n` samples per prompt: each prompt's keys and values are computed and stored once.

RFT samples a group of `n` answers to every prompt. A plain `model.generate(num_return_sequences=n)`
repeats the prompt `n` times: `n` prefills of the same tokens and `n` copies of its KV cache, read
again at every decoding step. Here the prompt is prefilled once, its KV stays one copy
(`[prompts, kv_heads, prompt_len, head_dim]`), and each sample keeps only the keys and values of its
own new tokens in a preallocated buffer (`[prompts * n, kv_heads, max_new, head_dim]`; no reallocation
while decoding). The attention of a decoding step is split in two parts and recombined exactly
("cascade" attention):

- prompt part: the queries of all `n` samples (and of the query heads that share a KV head) form one
  matrix against the prompt's keys, one batched matmul that reads the prompt KV once for the group;
- own part: each sample's query against its own new keys.

The parts are combined as in flash-decoding: one shared maximum, each part's exponentials and sums,
one division; the score matrices are never concatenated or transposed.

Shared instructions. The prompts of one call often start with the same tokens: a task's instructions come
first and the item (an act, its language) after them. Those tokens (`Instructions`, the longest common token
prefix of the call's prompts) are prefilled once for the whole call, batch 1, and stay one copy: each prompt's
prefill computes only its own remaining tokens, attending to the instructions' keys and values, and while
decoding a third part joins the cascade:

- instructions part: the queries of every sample of every prompt against the one copy of the instructions'
  keys, one batched matmul per KV head.

A long instruction (the 21 domains described with their own EuroVoc terms) then costs one prefill per call
instead of one per prompt, and one read per decoding step instead of one per prompt.

It plugs into Hugging Face models through their attention interface: `SharedPrefixCache` is passed as
`cache` (the forward argument that transformers 5.24 renamed from `past_key_values`), and the attention
function registered under `ATTENTION_NAME` is switched on only for the duration of `generate` (see
`shared_prefix_attention`). Any model whose attention goes through
`ALL_ATTENTION_FUNCTIONS` (Llama, Qwen2/3, Mistral, SmolLM, Gemma, ...) works, adapters (peft) included.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward

ATTENTION_NAME = "openrft_shared_prefix"


class Instructions:
    """Keys and values of the tokens every prompt of a call starts with: one copy, `[1, kv_heads, length, dim]`
    per layer (filled by a prefill pass through a `SharedPrefixCache` of one prompt)."""

    def __init__(self, keys: list[torch.Tensor], values: list[torch.Tensor]):
        self.keys = keys
        self.values = values

    @property
    def length(self) -> int:
        return int(self.keys[0].shape[2])

    @classmethod
    def of(cls, cache: "SharedPrefixCache") -> "Instructions":
        assert all(k is not None for k in cache.prefix_keys), "prefill the instructions first"
        return cls([k for k in cache.prefix_keys if k is not None], [v for v in cache.prefix_values if v is not None])


def common_prefix_length(sequences: list[list[int]]) -> int:
    """How many leading tokens all `sequences` share, at most the shortest length minus one (every sequence
    keeps a token of its own, whose logits predict its first new token)."""
    if len(sequences) < 2:
        return 0
    first, shortest = sequences[0], min(len(s) for s in sequences)
    length = 0
    while length < shortest - 1 and all(s[length] == first[length] for s in sequences):
        length += 1
    return length


class SharedPrefixCache:
    """Keys/values of a batch of prompts (once each) and of their `n` samples' new tokens (apart).

    Duck-types the part of `transformers.Cache` that the attention layers call (`update`). Use:
    `prefill` mode for the prompt forward (stores the prompt KV), then `start_decoding()`, then one
    forward per new token; `advance()` after each. With `instructions`, the prompts are what follows them
    (`prompt_mask` covers only these tokens) and every attention also reads the instructions' one copy.
    """

    def __init__(self, num_layers: int, n: int, max_new_tokens: int, prompt_mask: torch.Tensor,
                 instructions: Instructions | None = None):
        self.num_layers = num_layers
        self.n = n
        self.max_new_tokens = max_new_tokens
        self.prompt_mask = prompt_mask  # [prompts, prompt_len] bool, False on left padding
        self.prefix_keys: list[torch.Tensor | None] = [None] * num_layers
        self.prefix_values: list[torch.Tensor | None] = [None] * num_layers
        self.own_keys: list[torch.Tensor | None] = [None] * num_layers
        self.own_values: list[torch.Tensor | None] = [None] * num_layers
        self.decoding = False
        self.length = 0  # new tokens written per sample
        # additive mask over the prompt positions, broadcast over samples and heads: [prompts, 1, 1, prompt_len]
        self.prefix_bias = torch.zeros(prompt_mask.shape, dtype=torch.float32)
        self.prefix_bias.masked_fill_(~prompt_mask, float("-inf"))
        self.prefix_bias = self.prefix_bias[:, None, None, :]
        self.padded = not bool(prompt_mask.all())
        self.instructions = instructions

    # --- the Cache surface the attention layers use ---
    def update(self, key_states, value_states, layer_idx, *args, **kwargs):  # noqa: ARG002 - transformers' Cache.update signature
        if not self.decoding:
            self.prefix_keys[layer_idx] = key_states
            self.prefix_values[layer_idx] = value_states
            if self.instructions is None:
                return key_states, value_states
            # the prompts' prefill attends to the instructions first; only the prompts' own keys are stored
            rows = key_states.shape[0]
            shared_k = self.instructions.keys[layer_idx].expand(rows, -1, -1, -1)
            shared_v = self.instructions.values[layer_idx].expand(rows, -1, -1, -1)
            return torch.cat([shared_k, key_states], dim=2), torch.cat([shared_v, value_states], dim=2)
        own_k = self.own_keys[layer_idx]
        if own_k is None:
            rows, heads, _, dim = key_states.shape
            shape = (rows, heads, self.max_new_tokens, dim)
            own_k = self.own_keys[layer_idx] = key_states.new_zeros(shape)
            self.own_values[layer_idx] = value_states.new_zeros(shape)
        own_k[:, :, self.length] = key_states[:, :, 0]
        self.own_values[layer_idx][:, :, self.length] = value_states[:, :, 0]
        return _Decoding(self, layer_idx), None

    def get_seq_length(self, layer_idx: int = 0) -> int:
        prefix = self.prefix_keys[layer_idx]
        shared = 0 if self.instructions is None else self.instructions.length
        return shared + (0 if prefix is None else prefix.shape[2]) + self.length

    def start_decoding(self) -> None:
        self.decoding = True

    def advance(self) -> None:
        self.length += 1

    def keep(self, prompt_rows: torch.Tensor) -> None:
        """Drop finished prompt groups: keep only these prompt indices (and their samples)."""
        sample_rows = (prompt_rows[:, None] * self.n + torch.arange(self.n)).reshape(-1)
        for i in range(self.num_layers):
            prefix_k, prefix_v = self.prefix_keys[i], self.prefix_values[i]
            assert prefix_k is not None and prefix_v is not None  # the prompt pass filled every layer
            self.prefix_keys[i] = prefix_k[prompt_rows]
            self.prefix_values[i] = prefix_v[prompt_rows]
            own_k, own_v = self.own_keys[i], self.own_values[i]
            if own_k is not None:
                assert own_v is not None  # allocated together with own_k
                self.own_keys[i] = own_k[sample_rows]
                self.own_values[i] = own_v[sample_rows]
        self.prompt_mask = self.prompt_mask[prompt_rows]
        self.prefix_bias = self.prefix_bias[prompt_rows]
        self.padded = not bool(self.prompt_mask.all())


class _Decoding:
    """What `SharedPrefixCache.update` hands the attention function while decoding."""

    __slots__ = ("cache", "layer_idx")

    def __init__(self, cache: SharedPrefixCache, layer_idx: int):
        self.cache = cache
        self.layer_idx = layer_idx


def _attention(module, query, key, value, attention_mask, dropout: float = 0.0, scaling: float | None = None,
               **kwargs):
    """The registered attention function: plain SDPA for the prompt, cascade attention while decoding."""
    if not isinstance(key, _Decoding):
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                      scaling=scaling, **kwargs)
    cache, layer = key.cache, key.layer_idx
    prefix_k, prefix_v = cache.prefix_keys[layer], cache.prefix_values[layer]
    all_own_k, all_own_v = cache.own_keys[layer], cache.own_values[layer]
    # decoding: the prompt pass filled the prefix and `update` allocated this layer's own KV
    assert prefix_k is not None and prefix_v is not None and all_own_k is not None and all_own_v is not None
    own_k = all_own_k[:, :, : cache.length + 1]
    own_v = all_own_v[:, :, : cache.length + 1]
    prompts, kv_heads, _, dim = prefix_k.shape
    n, rows, heads = cache.n, query.shape[0], query.shape[1]
    group = heads // kv_heads
    scale = scaling if scaling is not None else dim ** -0.5
    # query [rows, heads, 1, dim]; row = prompt * n + sample, head h reads KV head h // group
    q_own = (query * scale).reshape(rows, kv_heads, group, dim)
    q_prefix = q_own.view(prompts, n, kv_heads, group, dim).transpose(1, 2).reshape(prompts, kv_heads, n * group, dim)
    # prompt part: one [n * group, prompt_len] score matrix per (prompt, KV head)
    scores_prefix = torch.matmul(q_prefix, prefix_k.transpose(-1, -2))
    if cache.padded:
        scores_prefix.add_(cache.prefix_bias)
    # own part: [rows, kv_heads, group, new]
    scores_own = torch.matmul(q_own, own_k.transpose(-1, -2))
    # instructions part (when the call has them): every row's queries against their one copy, per KV head
    scores_shared = None
    if cache.instructions is not None:
        q_shared = q_own.transpose(0, 1).reshape(kv_heads, rows * group, dim)
        scores_shared = torch.matmul(q_shared, cache.instructions.keys[layer][0].transpose(-1, -2))
    # one softmax over all parts: a shared maximum, then each part's exponentials and sums
    max_prefix = _to_rows(scores_prefix.amax(dim=-1), prompts, kv_heads, n, group)  # [rows, kv_heads, group]
    top = torch.maximum(max_prefix, scores_own.amax(dim=-1))
    if scores_shared is not None:
        top = torch.maximum(top, _shared_to_rows(scores_shared.amax(dim=-1), rows, group))
    top_prefix = _to_prompts(top, prompts, kv_heads, n, group)
    weights_prefix = scores_prefix.sub_(top_prefix[..., None]).exp_()
    weights_own = scores_own.sub_(top[..., None]).exp_()
    total = _to_rows(weights_prefix.sum(dim=-1), prompts, kv_heads, n, group) + weights_own.sum(dim=-1)
    out_prefix = _to_rows(torch.matmul(weights_prefix, prefix_v), prompts, kv_heads, n, group)  # [rows, kv, group, dim]
    out = out_prefix + torch.matmul(weights_own, own_v)
    if scores_shared is not None:
        assert cache.instructions is not None  # scores_shared exists only with instructions
        top_shared = top.transpose(0, 1).reshape(kv_heads, rows * group)
        weights_shared = scores_shared.sub_(top_shared[..., None]).exp_()
        total = total + _shared_to_rows(weights_shared.sum(dim=-1), rows, group)
        out = out + _shared_to_rows(torch.matmul(weights_shared, cache.instructions.values[layer][0]), rows, group)
    out = out / total[..., None]
    return out.reshape(rows, 1, heads, dim), None  # [rows, query length 1, heads, dim], as attention functions return


def _to_rows(x: torch.Tensor, prompts: int, kv_heads: int, n: int, group: int) -> torch.Tensor:
    """[prompts, kv_heads, n * group, ...] -> [prompts * n, kv_heads, group, ...]"""
    tail = x.shape[3:]
    return x.reshape(prompts, kv_heads, n, group, *tail).transpose(1, 2).reshape(prompts * n, kv_heads, group, *tail)


def _shared_to_rows(x: torch.Tensor, rows: int, group: int) -> torch.Tensor:
    """[kv_heads, rows * group, ...] -> [rows, kv_heads, group, ...]"""
    kv_heads, tail = x.shape[0], x.shape[2:]
    return x.reshape(kv_heads, rows, group, *tail).transpose(0, 1)


def _to_prompts(x: torch.Tensor, prompts: int, kv_heads: int, n: int, group: int) -> torch.Tensor:
    """[prompts * n, kv_heads, group, ...] -> [prompts, kv_heads, n * group, ...]"""
    tail = x.shape[3:]
    return x.reshape(prompts, n, kv_heads, group, *tail).transpose(1, 2).reshape(prompts, kv_heads, n * group, *tail)


AttentionInterface.register(ATTENTION_NAME, _attention)


def _base_model(model):
    """The transformers model under a peft wrapper (or the model itself)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def supports_shared_prefix(model) -> bool:
    base = _base_model(model)
    return bool(getattr(base, "_can_set_attn_implementation", lambda: False)())


@contextmanager
def shared_prefix_attention(model):
    """Switch the model's attention to the cascade function for the duration of a generate call."""
    base = _base_model(model)
    previous = base.config._attn_implementation
    base.set_attn_implementation(ATTENTION_NAME)
    try:
        yield
    finally:
        base.set_attn_implementation(previous)
