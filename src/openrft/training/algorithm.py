"""The policy-gradient objective of openrft: group-relative advantages with a clipped importance ratio.

For every prompt q the policy samples a group of G answers o_1..o_G; the grader scores them r_1..r_G.

1. **Group-relative advantages** (GRPO; Shao et al. 2024, "DeepSeekMath", arXiv:2402.03300):
   A_i = (r_i − mean(r)) / (std(r) + ε). With `scale_rewards=False` the division is dropped
   (Dr. GRPO; Liu et al. 2025, "Understanding R1-Zero-Like Training", arXiv:2503.20783), which removes the
   bias toward groups of low variance. Every token of o_i carries A_i.
2. **Zero-signal groups**: when all G rewards are equal every A_i is 0; the group teaches nothing. Such
   groups are counted (the share is a metric: a high share means the task is too easy or too hard, or the
   grader too coarse) and skipped to save compute.
3. **Clipped importance ratio** (PPO; Schulman et al. 2017, arXiv:1707.06347): one batch of rollouts serves
   `updates_per_batch` optimizer passes. With ρ_t = π_θ(o_t | q, o_<t) / π_old(o_t | q, o_<t),
   L_t = −min(ρ_t A, clip(ρ_t, 1−ε, 1+ε) A). On the first pass π_old is the current policy, so ρ = 1 and
   the gradient is the plain policy gradient; later passes are held near the sampling policy by the clip.
4. **Token-level normalization** (DAPO; Yu et al. 2025, arXiv:2503.14476): the loss is the *sum* of L_t over
   all completion tokens of the batch divided by their count, so long answers are not down-weighted
   per token as in per-sequence averaging.
5. **Optional KL penalty** to the reference policy (the base model: adapters off for LoRA), with the
   k3 estimator (Schulman 2020, "Approximating KL divergence"): KL_t = exp(ref_t − θ_t) − (ref_t − θ_t) − 1,
   added as β·KL_t per token. Off by default (β = 0), as in DAPO and Dr. GRPO.
6. **Truncated samples** (finish_reason "length") keep their grade (usually a parse error scoring 0,
   which teaches brevity) or, with `truncated="mask"`, are left out of the loss (DAPO's overlong
   filtering). Either way they are counted.

7. **Infrastructure failures** (a sandbox crash or timeout, a judge server error: graders.grade.
   INFRASTRUCTURE_ERRORS) say nothing about the answer: such samples are left out of the group's advantages
   and of the loss, and counted. A grader that scores 0, or an answer that does not parse, is a real 0.

Log-probabilities are those of the distribution each token was drawn from: softmax(logits / T) restricted to
the tokens the response_format's constraint allowed at that position and to the top_p nucleus
(`openrft.engines.sampling.sampling_logprobs`, the function the engine samples with). The masks are rebuilt
by replaying each sample's constraint over its tokens (`TransformersEngine.replay_masks`). Without them the
gradient of a grammar-forced token would push probability toward tokens the grammar never allows.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

EPS = 1e-6


def group_advantages(rewards: list[float], *, scale: bool = True) -> list[float]:
    """A_i = r_i − mean(r), divided by the group's std when `scale`. All-equal groups give zeros."""
    r = torch.tensor(rewards, dtype=torch.float64)
    centered = r - r.mean()
    if scale:
        std = r.std(unbiased=False)
        centered = centered / (std + EPS) if std > 0 else centered * 0.0
    return centered.tolist()


def is_zero_signal(rewards: list[float]) -> bool:
    return max(rewards) - min(rewards) < 1e-9


def graded_advantages(rewards: list[float], failed: list[bool], *, scale: bool = True) -> dict[int, float] | None:
    """Advantages of a group's samples whose grade did not fail for infrastructure reasons (7), by sample index.

    The failed samples are left out of the group's mean and std as well as of the result. None when fewer than
    two samples are left or they all scored the same (a zero-signal group, 2).
    """
    kept = [i for i, bad in enumerate(failed) if not bad]
    values = [rewards[i] for i in kept]
    if len(values) < 2 or is_zero_signal(values):
        return None
    return dict(zip(kept, group_advantages(values, scale=scale)))


@dataclass
class LossTerms:
    loss: torch.Tensor  # scalar, already divided by the batch's token count
    clip_fraction_sum: float  # number of tokens whose ratio was clipped (for the metric)
    kl_sum: float
    ratio_sum: float
    tokens: int


def clipped_policy_loss(logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor,
                        mask: torch.Tensor, *, clip_epsilon: float, total_tokens: int,
                        ref_logprobs: torch.Tensor | None = None, kl_coef: float = 0.0) -> LossTerms:
    """The per-token clipped surrogate (3), summed and divided by the batch's `total_tokens` (4), plus β·KL (5).

    `logprobs`, `old_logprobs`, `ref_logprobs`, `mask`: [B, T]; `advantages`: [B] (one per sequence).
    Passing the count of the whole batch lets several micro-batches accumulate gradients to the same loss.
    """
    adv = advantages.unsqueeze(1)
    ratio = torch.exp(logprobs - old_logprobs)
    unclipped = ratio * adv
    clipped = torch.clamp(ratio, 1.0 - clip_epsilon, 1.0 + clip_epsilon) * adv
    per_token = -torch.minimum(unclipped, clipped)
    kl_sum = 0.0
    if ref_logprobs is not None and kl_coef > 0:
        delta = ref_logprobs - logprobs
        kl = torch.exp(delta) - delta - 1.0
        per_token = per_token + kl_coef * kl
        kl_sum = float((kl * mask).sum().detach())
    loss = (per_token * mask).sum() / max(1, total_tokens)
    with torch.no_grad():
        was_clipped = ((ratio < 1.0 - clip_epsilon) | (ratio > 1.0 + clip_epsilon)).float()
        clip_sum = float((was_clipped * mask).sum())
        ratio_sum = float((ratio * mask).sum())
    return LossTerms(loss, clip_sum, kl_sum, ratio_sum, int(mask.sum()))


class SharedInstructions:
    """The keys and values of the tokens every prompt of a step starts with (a task's instructions), computed
    once per update pass instead of once per group, with the exact gradient.

    The instructions' forward runs once and keeps its graph. Each group's forward reads leaf copies of its keys
    and values (`cache()`), so each group's backward stops there and adds its gradient to the leaves;
    `backward()` then sends the sum through the instructions' forward once. By linearity this is the
    gradient of running the instructions inside every group. Under `torch.no_grad` (the reference
    log-probabilities) there is no graph and `backward()` does nothing.
    """

    def __init__(self, model, token_ids: list[int]):
        self.token_ids = list(token_ids)
        device = next(model.parameters()).device
        out = model(input_ids=torch.tensor([self.token_ids], device=device), use_cache=True)
        self._config = model.config
        self._kv = [(layer.keys, layer.values) for layer in out.cache.layers]
        self._leaves = [(k.detach().requires_grad_(k.requires_grad), v.detach().requires_grad_(v.requires_grad))
                        for k, v in self._kv]

    @classmethod
    def of(cls, model, prompts: list[list[int]]) -> "SharedInstructions | None":
        """The instructions of a step's prompts (their longest common token prefix); None when they share nothing."""
        from openrft.engines.kv import common_prefix_length

        length = common_prefix_length(prompts)
        return cls(model, prompts[0][:length]) if length else None

    def starts(self, prompt_ids: list[int]) -> bool:
        return len(prompt_ids) > len(self.token_ids) and prompt_ids[:len(self.token_ids)] == self.token_ids

    def cache(self):
        """A fresh cache holding the instructions (leaf copies: a group's backward stops at them)."""
        from transformers import DynamicCache

        return DynamicCache(ddp_cache_data=self._leaves, config=self._config)

    def backward(self) -> None:
        """Send the groups' summed gradients through the instructions' forward (once per update pass)."""
        tensors, grads = [], []
        for (k, v), (leaf_k, leaf_v) in zip(self._kv, self._leaves):
            for tensor, leaf in ((k, leaf_k), (v, leaf_v)):
                if leaf.grad is not None:
                    tensors.append(tensor)
                    grads.append(leaf.grad)
        if tensors:
            torch.autograd.backward(tensors, grads)


def sequence_logprobs(model, prompt_ids: list[int], completions: list[list[int]], *, temperature: float,
                      top_p: float = 1.0, masks: list[torch.Tensor | None] | None = None,
                      with_entropy: bool = False, instructions: SharedInstructions | None = None,
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Log-probabilities of each completion token under the sampling distribution, for one group.

    `masks[i]` is the allowed-token mask [len(completions[i]), vocab] (bool) the sampler used for completion i,
    or None when it was unconstrained. The prompt is run once and its key/value cache shared by the G
    completions (prefix sharing), which divides the prompt's cost by G; gradients flow through the shared
    cache. With `instructions` (the step's shared leading tokens, when the prompt starts with them) only the
    rest of the prompt is run; call `instructions.backward()` after the groups' backward passes.
    Returns (logprobs [G, T], mask [G, T], entropy of the sampling distribution [G, T] or None),
    T = the longest completion.
    """
    from openrft.engines.sampling import sampling_logprobs

    device = next(model.parameters()).device
    G = len(completions)
    T = max(1, max(len(c) for c in completions))
    if instructions is not None and instructions.starts(prompt_ids):
        own = torch.tensor([prompt_ids[len(instructions.token_ids):]], device=device)
        out = model(input_ids=own, cache=instructions.cache(), use_cache=True)
    else:
        out = model(input_ids=torch.tensor([prompt_ids], device=device), use_cache=True)
    first_logits = out.logits[:, -1:, :].expand(G, 1, -1)  # predicts each completion's first token
    cache = out.cache
    cache.batch_repeat_interleave(G)
    pad = 0
    ids = torch.full((G, T), pad, dtype=torch.long, device=device)
    mask = torch.zeros((G, T), dtype=torch.float32, device=device)
    for i, c in enumerate(completions):
        ids[i, :len(c)] = torch.tensor(c, device=device)
        mask[i, :len(c)] = 1.0
    if T > 1:
        attention = torch.cat([torch.ones((G, len(prompt_ids)), device=device), mask[:, :-1]], dim=1).long()
        rest = model(input_ids=ids[:, :-1], attention_mask=attention, cache=cache, use_cache=False).logits
        logits = torch.cat([first_logits, rest], dim=1)
    else:
        logits = first_logits
    allowed = None
    if masks is not None and any(m is not None for m in masks):
        allowed = torch.ones(logits.shape, dtype=torch.bool, device=device)
        for i, m in enumerate(masks):
            if m is not None:
                allowed[i, :m.shape[0]] = m.to(device)
    logp_all = sampling_logprobs(logits, temperature=temperature, top_p=top_p, allowed=allowed, always_keep=ids)
    logprobs = torch.gather(logp_all, 2, ids.unsqueeze(-1)).squeeze(-1)
    entropy = None
    if with_entropy:
        with torch.no_grad():
            p = logp_all.exp()
            entropy = -torch.where(p > 0, p * logp_all, torch.zeros_like(p)).sum(-1)
    return logprobs, mask, entropy
