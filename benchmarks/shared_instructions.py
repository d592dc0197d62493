"""Step time with long shared instructions vs short ones, with the instructions computed once per step or per prompt.

    python benchmarks/shared_instructions.py               # writes benchmarks/results/shared_instructions.json
    python benchmarks/shared_instructions.py --repeats 1   # a quick run

An RL step of the EuroVoc demo on the embedded model (LoRA r = 16 on every linear layer, float32, CPU): 4 rows
× 8 samples drawn under the task's response_format (at most 48 new tokens, temperature 1), then the update's
log-probabilities and one backward pass over the 4 groups (fixed advantages; the constraint masks are not
replayed, that cost is the same in every configuration). Four configurations, on the same 4 rows (the training file's
first 4: real EuroVoc acts from ../shared/data, else the offline task) and the same seed:

- `short`: the task's default prompt (its instructions, ~60 tokens with the chat header, then the act);
- `described`: the prompt variant whose instructions describe each of the 21 domains with its own EuroVoc
  terms (~530 tokens shared with the chat header, then the act, cut to the variant's budget,
  `tasks.eurovoc.default_max_prompt_tokens`: as much of the act as the short prompt shows; before commit
  33ad3ff a fixed 640 prompt tokens, which left the act about half as many);

each with the instructions `shared` (the engine prefills the prompts' common leading tokens once per call,
`kv.Instructions`; the update runs them once per pass, `algorithm.SharedInstructions`) and `apart` (every
prompt prefilled and run whole, as before). The configurations run interleaved, `--repeats` rounds (after
one warm-up round), so that a change in the machine's load hits them alike; the figures are medians over the
rounds. What the benchmark is for: how much the long instructions cost per step, apart and shared.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results" / "shared_instructions.json"
CONFIGS = [("short", False), ("short", True), ("described", False), ("described", True)]


def step(model, tokenizer, rows, params, shared: bool) -> dict:
    """One sampling call and one update pass; seconds of each and the prompts' shared token count."""
    from openrft.engines.kv import common_prefix_length
    from openrft.engines.transformers import TransformersEngine
    from openrft.training import algorithm

    engine = TransformersEngine(model, tokenizer, share_instructions=shared)
    started = time.perf_counter()
    groups = engine.generate([r["messages"] for r in rows], params)
    sampled = time.perf_counter()
    model.train()
    model.zero_grad(set_to_none=True)
    prompts = [g[0].prompt_token_ids for g in groups]
    instructions = algorithm.SharedInstructions.of(model, prompts) if shared else None
    tokens = 0
    for g in groups:
        completions = [s.token_ids or [tokenizer.eos_token_id] for s in g]
        advantages = torch.linspace(-1, 1, len(completions))
        logp, mask, _ = algorithm.sequence_logprobs(model, g[0].prompt_token_ids, completions, temperature=1.0,
                                                    instructions=instructions)
        (-(logp * mask).sum(-1) * advantages).sum().backward()
        tokens += int(mask.sum())
    if instructions is not None:
        instructions.backward()
    model.eval()
    done = time.perf_counter()
    return {"sampling_s": sampled - started, "update_s": done - sampled, "step_s": done - started,
            "prompt_tokens": [len(p) for p in prompts], "shared_tokens": common_prefix_length(prompts),
            "completion_tokens": tokens}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from peft import LoraConfig, get_peft_model

    from openrft.engines.base import SamplingParams
    from openrft.models import load_model
    from openrft.tasks import default_task

    task = default_task(quiet=True)
    rows = {prompt: task.rows("train", prompt=prompt, limit=args.prompts) for prompt in ("short", "described")}
    model, tokenizer = load_model("default", dtype="float32")
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear"))
    params = SamplingParams(n=8, temperature=1.0, max_tokens=48, seed=1, response_format=task.response_format)
    runs: dict[str, list[dict]] = {f"{p}/{'shared' if s else 'apart'}": [] for p, s in CONFIGS}
    loads = [os.getloadavg()[0]]
    for round_ in range(args.repeats + 1):
        for prompt, shared in CONFIGS:
            result = step(model, tokenizer, rows[prompt], params, shared)
            name = f"{prompt}/{'shared' if shared else 'apart'}"
            print(f"round {round_}{' (warm-up)' if round_ == 0 else ''} {name:18} step {result['step_s']:6.1f} s "
                  f"(sampling {result['sampling_s']:5.1f}, update {result['update_s']:5.1f}); "
                  f"{result['shared_tokens']} shared of {result['prompt_tokens']} prompt tokens", flush=True)
            if round_ > 0:
                runs[name].append(result)
        loads.append(os.getloadavg()[0])

    summary = {}
    for name, results in runs.items():
        keys = ("sampling_s", "update_s", "step_s")
        summary[name] = {key: statistics.median(r[key] for r in results) for key in keys}
        summary[name]["shared_tokens"] = results[0]["shared_tokens"]
        summary[name]["prompt_tokens"] = results[0]["prompt_tokens"]
    print(f"\nmedians over {args.repeats} rounds; load average {min(loads):.1f}-{max(loads):.1f}")
    print(f"{'configuration':20} {'step s':>7} {'sampling s':>11} {'update s':>9}")
    for name, figures in summary.items():
        print(f"{name:20} {figures['step_s']:7.1f} {figures['sampling_s']:11.1f} {figures['update_s']:9.1f}")
    ratios = {
        "described_over_short_apart": summary["described/apart"]["step_s"] / summary["short/apart"]["step_s"],
        "described_over_short_shared": summary["described/shared"]["step_s"] / summary["short/shared"]["step_s"],
        "apart_over_shared_described": summary["described/apart"]["step_s"] / summary["described/shared"]["step_s"],
        "apart_over_shared_short": summary["short/apart"]["step_s"] / summary["short/shared"]["step_s"],
    }
    for key, value in ratios.items():
        print(f"{key}: {value:.2f}x")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"args": vars(args), "load_average": [min(loads), max(loads)],
                                   "torch": torch.__version__, "task": task.source, "summary": summary,
                                   "ratios": ratios, "runs": runs}, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
