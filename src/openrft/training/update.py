"""One RFT update: advantages per group, then `updates_per_batch` optimizer passes of the clipped policy loss
(the rules and their papers: `openrft.training.algorithm`), with the step's RL statistics for the metrics event."""

from __future__ import annotations

import math
from statistics import mean

import torch

from openrft import faults
from openrft.training import algorithm


def policy_update(model, optimizer, rollouts, ext, dist, engine) -> dict:
    """`updates_per_batch` optimizer steps over this step's groups (see openrft.training.algorithm).

    The log-probabilities are recomputed under the distribution the rollouts were sampled from: the job's
    temperature and top_p, and each sample's constraint masks replayed by `engine`.
    """
    groups = []
    zero_signal = truncated = infrastructure = 0
    lengths: list[int] = []
    for rollout in rollouts:
        lengths.extend(len(s.token_ids) for s in rollout.samples)
        truncated += sum(1 for s in rollout.samples if s.finish_reason == "length")
        failed = [g.infrastructure_failed for g in rollout.grades[0]]
        infrastructure += sum(failed)
        adv = algorithm.graded_advantages(rollout.rewards, failed, scale=ext.scale_rewards)
        if adv is None:
            zero_signal += 1
            continue
        keep = [i for i in adv if len(rollout.samples[i].token_ids) > 0
                and not (ext.truncated == "mask" and rollout.samples[i].finish_reason == "length")]
        if keep:
            samples = [rollout.samples[i] for i in keep]
            groups.append({"prompt": samples[0].prompt_token_ids,
                           "completions": [s.token_ids for s in samples],
                           "masks": [engine.replay_masks(s) for s in samples],
                           "sampler_logprobs": [s.logprobs for s in samples],
                           "advantages": torch.tensor([adv[i] for i in keep], dtype=torch.float32)})
    local_tokens = sum(len(c) for g in groups for c in g["completions"])
    total_tokens = int(dist.sum(local_tokens))
    n_groups = dist.sum(len(rollouts))
    stats = {"loss": 0.0, "kl": 0.0, "clip_fraction": 0.0, "entropy": 0.0, "grad_norm": 0.0, "ratio_mean": 1.0,
             "zero_signal_groups": int(dist.sum(zero_signal)), "groups": int(n_groups),
             "infrastructure_failures": int(dist.sum(infrastructure)),
             "zero_signal_share": dist.sum(zero_signal) / max(1, n_groups),
             "truncated_share": dist.sum(truncated) / max(1, dist.sum(len(lengths))),
             "response_length_mean": dist.sum(sum(lengths)) / max(1, dist.sum(len(lengths))),
             "sampler_logprob_gap": 0.0, "skipped_nan": 0, "tokens_total": total_tokens,
             "learning_rate": optimizer.param_groups[0]["lr"]}
    if total_tokens == 0:
        return stats
    model.train()
    ref_needed = ext.kl_coef > 0 and hasattr(model, "disable_adapter")
    losses, clips, kls, ratios, entropies, gaps, norms = [], [], [], [], [], [], []
    # the instructions every prompt of the step starts with: run once per pass, not once per group
    prompts = [r.samples[0].prompt_token_ids for r in rollouts if r.samples]
    reference_instructions = None  # the same for the reference model (the adapter off), for the KL term
    if ref_needed:
        with torch.no_grad(), model.disable_adapter():
            reference_instructions = algorithm.SharedInstructions.of(model, prompts)
    for update in range(ext.updates_per_batch):
        optimizer.zero_grad(set_to_none=True)
        step_loss = 0.0
        instructions = algorithm.SharedInstructions.of(model, prompts)
        for g in groups:
            logprobs, mask, entropy = algorithm.sequence_logprobs(model, g["prompt"], g["completions"],
                                                                  temperature=ext.temperature, top_p=ext.top_p,
                                                                  masks=g["masks"], with_entropy=update == 0,
                                                                  instructions=instructions)
            if update == 0:
                g["old"] = logprobs.detach()
                sampler = torch.zeros_like(g["old"])
                for i, lp in enumerate(g["sampler_logprobs"]):
                    sampler[i, :len(lp)] = torch.tensor(lp[:mask.shape[1]])
                gaps.append(float(((g["old"] - sampler).abs() * mask).sum() / mask.sum()))
                assert entropy is not None  # asked for on the first pass (with_entropy)
                entropies.append(float((entropy * mask).sum() / mask.sum()))
                if ref_needed:
                    with torch.no_grad(), model.disable_adapter():
                        g["ref"], _, _ = algorithm.sequence_logprobs(model, g["prompt"], g["completions"],
                                                                     temperature=ext.temperature, top_p=ext.top_p,
                                                                     masks=g["masks"],
                                                                     instructions=reference_instructions)
            terms = algorithm.clipped_policy_loss(logprobs, g["old"], g["advantages"], mask,
                                                  clip_epsilon=ext.clip_epsilon, total_tokens=total_tokens,
                                                  ref_logprobs=g.get("ref"), kl_coef=ext.kl_coef)
            terms.loss.backward()
            step_loss += float(terms.loss.detach())
            clips.append(terms.clip_fraction_sum)
            kls.append(terms.kl_sum)
            ratios.append(terms.ratio_sum)
        if instructions is not None:
            instructions.backward()
        dist.all_reduce_grads(model)
        step_loss = dist.sum(step_loss)
        if not math.isfinite(step_loss) or any(p.grad is not None and not torch.isfinite(p.grad).all()
                                               for p in model.parameters() if p.requires_grad):
            optimizer.zero_grad(set_to_none=True)
            stats["skipped_nan"] += 1
            continue
        norm = torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], ext.max_grad_norm)
        norms.append(float(norm))
        faults.maybe_fail("optimizer")
        optimizer.step()
        losses.append(step_loss)
    model.eval()
    token_passes = max(1, total_tokens * ext.updates_per_batch)
    stats.update({"loss": mean(losses) if losses else float("nan"),
                  "kl": dist.sum(sum(kls)) / token_passes, "clip_fraction": dist.sum(sum(clips)) / token_passes,
                  "ratio_mean": dist.sum(sum(ratios)) / token_passes,
                  "entropy": mean(entropies) if entropies else 0.0, "grad_norm": mean(norms) if norms else 0.0,
                  "sampler_logprob_gap": mean(gaps) if gaps else 0.0})
    return stats
