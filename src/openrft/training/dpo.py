"""Direct preference optimization (OpenAI's `method.type: "dpo"`; Rafailov et al. 2023, arXiv:2305.18290).

A row is a prompt (`input.messages`) with a preferred and a non-preferred assistant answer
(openrft.data.formats). Each answer is encoded like an SFT target (openrft.training.sft.encode_conversation:
the answer's tokens after the rendered prompt), and its log-probability is the **sum** over its tokens, as in
TRL's DPOTrainer. With π the policy and π_ref the frozen reference (the model the job started from: with LoRA
the same model with its adapters switched off, `model.disable_adapter()`; with full fine-tuning a frozen copy),

    r_w = β (log π(y_w|x) − log π_ref(y_w|x)),   r_l = β (log π(y_l|x) − log π_ref(y_l|x))
    loss = −log σ(r_w − r_l)                         (TRL's default `sigmoid` loss), averaged over the batch's pairs

At the first step π = π_ref, so every pair's loss is log 2. Metrics (TRL's names in brackets): `loss`,
`reward_accuracy` (rewards/accuracies: the share of pairs with r_w > r_l), `reward_margin` (rewards/margins:
mean r_w − r_l), `chosen_reward` and `rejected_reward` (rewards/chosen, rewards/rejected), `chosen_logp` and
`rejected_logp` (logps/chosen, logps/rejected). The reference log-probabilities of a row are computed once and
kept (they do not change).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from openrft.training.sft import Encoded, EncodingError, encode_conversation, token_logprobs


@dataclass
class Pair:
    """One preference row, encoded: the preferred (chosen) and non-preferred (rejected) sequences."""

    chosen: Encoded
    rejected: Encoded
    reference: tuple[float, float] | None = field(default=None)  # (log π_ref(chosen), log π_ref(rejected))


def encode_pair(tokenizer, row: dict, where: str = "row") -> Pair:
    prompt = row["input"]["messages"]
    tools = row["input"].get("tools")
    sequences = []
    for key in ("preferred_output", "non_preferred_output"):
        messages = prompt + row[key]
        targets = list(range(len(prompt), len(messages)))
        encoded = encode_conversation(tokenizer, messages, targets, tools=tools, where=where)
        if not encoded.n_targets:
            raise EncodingError(f"{where}: {key}: the answer renders to no tokens")
        sequences.append(encoded)
    return Pair(chosen=sequences[0], rejected=sequences[1])


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, reference_chosen: torch.Tensor,
             reference_rejected: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-pair sigmoid DPO loss and the implicit rewards (r_w, r_l), from summed log-probabilities [B]."""
    chosen_reward = beta * (policy_chosen - reference_chosen)
    rejected_reward = beta * (policy_rejected - reference_rejected)
    return -F.logsigmoid(chosen_reward - rejected_reward), chosen_reward.detach(), rejected_reward.detach()


class DpoObjective:
    """The DPO loss over a batch of pairs (see the module's docstring), for openrft.training.offline.

    `reference_model` is None with LoRA (the policy with its adapters off is the reference), else a frozen copy.
    """

    method = "dpo"
    metric_names = ("loss", "reward_accuracy", "reward_margin", "chosen_reward", "rejected_reward", "chosen_logp",
                    "rejected_logp")

    def __init__(self, beta: float, reference_model=None):
        self.beta = beta
        self.reference_model = reference_model

    def encode(self, tokenizer, row: dict, where: str) -> Pair:
        return encode_pair(tokenizer, row, where)

    def tokens(self, example: Pair) -> int:
        return len(example.chosen.ids) + len(example.rejected.ids)

    def reference(self, model, pair: Pair) -> tuple[float, float]:
        if pair.reference is None:
            with torch.no_grad():
                if self.reference_model is not None:
                    logps, _ = token_logprobs(self.reference_model, [pair.chosen, pair.rejected])
                else:
                    with model.disable_adapter():
                        logps, _ = token_logprobs(model, [pair.chosen, pair.rejected])
            pair.reference = (float(logps[0].sum()), float(logps[1].sum()))
        return pair.reference

    def batch(self, model, examples: list[Pair], *, train: bool) -> dict:
        """Accumulate the batch's gradient (when `train`), one pair at a time; returns the batch's metrics."""
        sums = dict.fromkeys(self.metric_names, 0.0)
        for pair in examples:
            ref_chosen, ref_rejected = self.reference(model, pair)
            with torch.set_grad_enabled(train):
                logps, _ = token_logprobs(model, [pair.chosen, pair.rejected])
                chosen, rejected = logps[0].sum(), logps[1].sum()
                reference = torch.tensor([ref_chosen, ref_rejected], device=chosen.device)
                loss, r_w, r_l = dpo_loss(chosen.unsqueeze(0), rejected.unsqueeze(0), reference[:1], reference[1:],
                                          self.beta)
                if train:
                    (loss.sum() / len(examples)).backward()
            sums["loss"] += float(loss.detach().sum())
            sums["reward_accuracy"] += float((r_w > r_l).float().sum())
            sums["reward_margin"] += float((r_w - r_l).sum())
            sums["chosen_reward"] += float(r_w.sum())
            sums["rejected_reward"] += float(r_l.sum())
            sums["chosen_logp"] += float(chosen.detach())
            sums["rejected_logp"] += float(rejected.detach())
        return {name: value / len(examples) for name, value in sums.items()}
