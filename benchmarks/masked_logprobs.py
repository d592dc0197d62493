"""The trainer's log-probabilities against the sampler's, before and after masking; what canonical labels change.

    python benchmarks/masked_logprobs.py               # 24 EuroVoc validation acts x 8 samples, 48 tokens
    python benchmarks/masked_logprobs.py --prompts 4   # a quicker run

The demo's settings: the EuroVoc task's prompts and response_format (1-5 labels, uniqueItems), temperature 1,
48 new tokens. Two sampling arms on the same prompts and seed:

- **labels as labels** (openrft today): the grammar plus the canonical-label rule and uniqueItems
  (`openrft.engines.constraints`);
- **grammar only** (openrft before): the same grammar without the label rule (its enum sites switched off),
  which admits any spelling of a label and repeats.

For each arm: the share of answers cut at max_tokens, unparseable answers, repeated labels, tokens per answer.
For the first arm, the trainer's recomputation of every sampled token's log-probability in two ways:

- **masked** (the trainer now): `sampling_logprobs` under the sample's replayed constraint masks;
- **unmasked** (the trainer before): log_softmax(logits / T) over the whole vocabulary;

against the sampler's recorded log-probability (the distribution it drew from). Reported: mean and max
|trainer − sampler| per token, the mean gap in nats per sample, the share of forced tokens (one allowed token)
and the median share of the unmasked probability mass that the allowed tokens hold.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from unittest import mock

import torch
from rich.console import Console
from rich.table import Table

RESULTS = Path(__file__).resolve().parent / "results" / "masked_logprobs.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompts", type=int, default=24)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    from openrft.engines import SamplingParams
    from openrft.engines.transformers import TransformersEngine
    from openrft.tasks import default_task
    from openrft.training import algorithm

    console = Console(stderr=True)
    task = default_task()
    rows = task.rows("validation")[:: max(1, len(task.rows("validation")) // args.prompts)][: args.prompts]
    prompts = [row["messages"] for row in rows]
    engine = TransformersEngine.from_name("default")
    params = SamplingParams(n=args.samples, temperature=1.0, max_tokens=args.max_tokens, seed=args.seed,
                            response_format=task.response_format)
    arms = {}
    groups_by_arm = {}
    for arm in ("labels as labels", "grammar only"):
        began = time.perf_counter()
        if arm == "grammar only":
            with mock.patch("openrft.engines.transformers.enum_sites", lambda _schema, _vocab: []):  # the grammar alone
                groups = engine.generate(prompts, params)
        else:
            groups = engine.generate(prompts, params)
        seconds = time.perf_counter() - began
        samples = [s for g in groups for s in g]
        labels = [s.output_json["labels"] for s in samples if s.output_json]
        raw_labels = [_labels_in(s.output_text) for s in samples]
        arms[arm] = {
            "samples": len(samples), "seconds": seconds,
            "cut_at_max_tokens": sum(s.finish_reason == "length" for s in samples) / len(samples),
            "unparseable": sum(s.parse_error is not None for s in samples) / len(samples),
            "with_repeated_labels": sum(len(x) != len(set(x)) for x in raw_labels if x) / len(samples),
            "tokens_per_answer": statistics.mean(s.completion_tokens for s in samples),
            "labels_per_parsed_answer": statistics.mean(len(x) for x in labels) if labels else None,
        }
        groups_by_arm[arm] = groups

    per_token_masked, per_token_unmasked, sample_gap_unmasked, forced, allowed_mass = [], [], [], 0, []
    tokens = 0
    for group in groups_by_arm["labels as labels"]:
        masks = [engine.replay_masks(s) for s in group]
        with torch.no_grad():
            masked, _, _ = algorithm.sequence_logprobs(engine.model, group[0].prompt_token_ids,
                                                       [s.token_ids for s in group], temperature=1.0, masks=masks)
            unmasked, _, _ = algorithm.sequence_logprobs(engine.model, group[0].prompt_token_ids,
                                                         [s.token_ids for s in group], temperature=1.0)
        for i, s in enumerate(group):
            n = len(s.token_ids)
            sampler = torch.tensor(s.logprobs)
            per_token_masked.extend((masked[i, :n] - sampler).abs().tolist())
            per_token_unmasked.extend((unmasked[i, :n] - sampler).abs().tolist())
            sample_gap_unmasked.append(float((unmasked[i, :n] - sampler).abs().sum()))
            forced += int((masks[i].sum(-1) == 1).sum())
            tokens += n
            # the allowed tokens' share of the unmasked mass: exp(unmasked − masked) for the sampled token
            allowed_mass.extend((unmasked[i, :n] - masked[i, :n]).exp().tolist())
    gap = {
        "tokens": tokens,
        "masked_mean_abs_per_token": statistics.mean(per_token_masked),
        "masked_max_abs_per_token": max(per_token_masked),
        "unmasked_mean_abs_per_token": statistics.mean(per_token_unmasked),
        "unmasked_mean_nats_per_sample": statistics.mean(sample_gap_unmasked),
        "forced_token_share": forced / tokens,
        "allowed_mass_median": statistics.median(allowed_mass),
    }
    table = Table("arm", "cut at max_tokens", "unparseable", "repeated labels", "tokens/answer", "labels/answer",
                  title=f"EuroVoc: {len(prompts)} acts x {args.samples} samples, <= {args.max_tokens} tokens")
    for arm, r in arms.items():
        table.add_row(arm, f"{r['cut_at_max_tokens']:.1%}", f"{r['unparseable']:.1%}",
                      f"{r['with_repeated_labels']:.1%}", f"{r['tokens_per_answer']:.1f}",
                      "-" if r["labels_per_parsed_answer"] is None else f"{r['labels_per_parsed_answer']:.2f}")
    console.print(table)
    console.print(f"trainer vs sampler, per token: masked mean {gap['masked_mean_abs_per_token']:.2e} "
                  f"max {gap['masked_max_abs_per_token']:.2e}; unmasked mean {gap['unmasked_mean_abs_per_token']:.3f} "
                  f"({gap['unmasked_mean_nats_per_sample']:.1f} nats per sample); forced tokens "
                  f"{gap['forced_token_share']:.1%}; allowed mass median {gap['allowed_mass_median']:.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"task": task.name, "prompts": len(prompts), "samples_per_prompt": args.samples,
                                    "max_tokens": args.max_tokens, "arms": arms, "logprob_gap": gap}, indent=2))
    console.print(f"-> {args.out}")


def _labels_in(text: str) -> list[str] | None:
    """The label strings of an answer, repeats kept (the parsed JSON would fail the schema on a repeat)."""
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value.get("labels") if isinstance(value, dict) and isinstance(value.get("labels"), list) else None


if __name__ == "__main__":
    main()
