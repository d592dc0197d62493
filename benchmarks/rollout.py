"""Rollout speed: openrft's sampling engine against plain `model.generate`, same model and batch.

    python benchmarks/rollout.py                  # 8 prompts x 8 samples x 128 tokens; writes results/rollout.json
    python benchmarks/rollout.py --new-tokens 32  # a quicker run

The batch (the one an RFT step samples): 8 EuroVoc acts from ../shared/data/eurovoc/train.jsonl (the
first English ones), each cut so that the rendered chat prompt is about 300 tokens, 8 samples per
prompt, exactly 128 new tokens per sample (end-of-sequence suppressed for both sides, so that both
produce the same number of tokens), temperature 1, top_p 1, the embedded model, on the CPU with
torch's default threads (or `--threads`).

- `generate`: the normal way a user would do it: the model in fp32, the 8 prompts batched with left
  padding, `model.generate(do_sample=True, num_return_sequences=8, max_new_tokens=128, min_new_tokens=128)`.
- `engine`: `TransformersEngine.from_name("default")` (its default dtype on this machine) with
  `SamplingParams(n=8, max_tokens=128, min_tokens=128)`: each prompt is prefilled once and its KV
  cache shared by its 8 samples, with log-probabilities of every sampled token computed on the way.

Each side runs in its own subprocess (one after the other) after a small warm-up call, so that its
peak memory (ru_maxrss) is its own. The machine's fp32 and bf16 matmul throughput is measured first:
the engine's and generate's useful work (2 FLOPs per parameter per generated token) is shown as a
fraction of it. The load average and each side's CPU time are recorded: on a shared machine the wall
times move with the load (CPU time less so).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

import openrft  # noqa: F401  (first: it sets OMP_WAIT_POLICY before torch loads, for both sides, as the CLI does)

RESULTS = Path(__file__).resolve().parent / "results" / "rollout.json"
INSTRUCTION = ("Read this EU legal act and name all of its EuroVoc level-1 domains. "
               'Answer with JSON: {"labels": [...]}.\n\n')
console = Console(stderr=True)


def eurovoc_prompts(count: int, prompt_tokens: int) -> list[list[dict]] | None:
    """`count` chat prompts of about `prompt_tokens` tokens each from the EuroVoc training acts (None without data)."""
    from openrft.models import load_tokenizer
    from openrft.paths import shared_data_dir

    data = shared_data_dir()
    path = data / "eurovoc" / "train.jsonl" if data else None
    if path is None or not path.is_file():
        return None
    tokenizer = load_tokenizer("default")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows = [row for row in rows if row["language"] == "en"][:count]
    prompts = []
    for row in rows:
        overhead = len(tokenizer.apply_chat_template([{"role": "user", "content": INSTRUCTION}], tokenize=True,
                                                     add_generation_prompt=True, return_dict=False))
        ids = tokenizer(row["text"], add_special_tokens=False)["input_ids"][: prompt_tokens - overhead]
        prompts.append([{"role": "user", "content": INSTRUCTION + tokenizer.decode(ids)}])
    return prompts


def matmul_gflops(dtype_name: str, seconds: float = 2.0) -> float:
    """Best measured GEMM throughput (GFLOP/s) over a few shapes: the decode shape and square ones."""
    import torch

    dtype = getattr(torch, dtype_name)
    best = 0.0
    for m, k, n in [(64, 576, 1536), (512, 576, 1536), (1024, 1024, 1024)]:
        a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
        a @ b
        count, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds / 3:
            a @ b
            count += 1
        best = max(best, 2 * m * k * n * count / (time.perf_counter() - started) / 1e9)
    return best


def worker(side: str, prompts: list, samples: int, new_tokens: int, threads: int | None) -> dict:
    """Run one side on the batch; returns tokens/s, seconds and peak memory of this process."""
    import torch

    if threads:
        torch.set_num_threads(threads)

    from openrft.engines import SamplingParams
    from openrft.engines.transformers import TransformersEngine, default_dtype
    from openrft.models import load_model

    if side == "generate":
        model, tokenizer = load_model("default", dtype="float32")
        model.eval()
        tokenizer.padding_side = "left"
        texts = [tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in prompts]
        batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)

        def run(tokens: int) -> int:
            torch.manual_seed(0)
            with torch.inference_mode():
                out = model.generate(**batch, do_sample=True, temperature=1.0, top_p=1.0, top_k=0,
                                     num_return_sequences=samples, max_new_tokens=tokens, min_new_tokens=tokens,
                                     pad_token_id=tokenizer.pad_token_id)
            return (out.shape[1] - batch["input_ids"].shape[1]) * out.shape[0]

        dtype, prompt_tokens = "float32", batch["attention_mask"].sum(dim=1).tolist()
    else:
        engine = TransformersEngine.from_name("default")
        dtype = default_dtype("cpu")

        def run(tokens: int) -> int:
            params = SamplingParams(n=samples, temperature=1.0, top_p=1.0, max_tokens=tokens, min_tokens=tokens,
                                    seed=0)
            results = engine.generate(prompts, params)
            return sum(s.completion_tokens for group in results for s in group)

        prompt_tokens = [len(engine.tokenizer.apply_chat_template(p, tokenize=True, add_generation_prompt=True,
                                                                  return_dict=False)) for p in prompts]
    run(2)  # warm-up: first-call allocations and kernel selection
    started, cpu_started = time.perf_counter(), time.process_time()
    produced = run(new_tokens)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    return {"side": side, "dtype": dtype, "tokens": produced, "seconds": seconds, "tokens_per_s": produced / seconds,
            "cpu_seconds": cpu_seconds, "tokens_per_cpu_s": produced / cpu_seconds,
            "prompt_tokens_mean": sum(prompt_tokens) / len(prompt_tokens),
            "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "threads": torch.get_num_threads()}


def run_side(side: str, args) -> dict:
    command = [sys.executable, __file__, "--worker", side, "--prompts", str(args.prompts), "--samples",
               str(args.samples), "--new-tokens", str(args.new_tokens), "--prompt-tokens", str(args.prompt_tokens)]
    if args.threads:
        command += ["--threads", str(args.threads)]
    with console.status(f"running {side} ({args.prompts} prompts x {args.samples} samples x {args.new_tokens} tokens)"):
        done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        console.print(done.stderr[-3000:])
        raise SystemExit(f"{side} failed (exit {done.returncode})")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--prompt-tokens", type=int, default=300)
    parser.add_argument("--threads", type=int, help="torch threads in both workers (default: torch's default)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--worker", choices=["generate", "engine"], help=argparse.SUPPRESS)
    args = parser.parse_args()

    prompts = eurovoc_prompts(args.prompts, args.prompt_tokens)
    if prompts is None:
        console.print("[yellow]skipped[/]: ../shared/data/eurovoc/train.jsonl not found (set OPENRFT_DATA_DIR)")
        return
    if args.worker:
        print(json.dumps(worker(args.worker, prompts, args.samples, args.new_tokens, args.threads)))
        return

    import torch

    from openrft.models import resolve_model

    resolve_model("default")  # convert the embedded model once, outside the timings
    load_before = os.getloadavg()
    if args.threads:
        torch.set_num_threads(args.threads)
    fp32, bf16 = matmul_gflops("float32"), matmul_gflops("bfloat16")
    generate = run_side("generate", args)
    engine = run_side("engine", args)
    load_after = os.getloadavg()

    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(resolve_model("default").path)
    params = sum(_linear_parameters(config))
    limit = {"float32": fp32, "bfloat16": bf16}
    for side in (generate, engine):
        side["gflops"] = side["tokens_per_s"] * 2 * params / 1e9
        side["fraction_of_matmul_peak"] = side["gflops"] / limit[side["dtype"]]
    result = {
        "batch": {"prompts": args.prompts, "samples_per_prompt": args.samples, "new_tokens": args.new_tokens,
                  "prompt_tokens_mean": engine["prompt_tokens_mean"]},
        "machine": {"cpu": _cpu_name(), "cores": os.cpu_count(), "torch": torch.__version__,
                    "threads": engine["threads"], "load_average_before": load_before, "load_average_after": load_after},
        "matmul_gflops": {"float32": fp32, "bfloat16": bf16},
        "flops_per_generated_token": 2 * params,
        "generate": generate,
        "engine": engine,
        "speedup": engine["tokens_per_s"] / generate["tokens_per_s"],
        "speedup_cpu_time": engine["tokens_per_cpu_s"] / generate["tokens_per_cpu_s"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")

    table = Table(title=f"rollout: {args.prompts} prompts x {args.samples} samples x {args.new_tokens} new tokens, "
                        f"~{engine['prompt_tokens_mean']:.0f}-token prompts")
    for column in ("", "dtype", "seconds", "tokens/s", "CPU seconds", "GFLOP/s", "of matmul peak", "peak memory"):
        table.add_column(column, justify="right")
    for name, side in (("model.generate", generate), ("openrft engine", engine)):
        table.add_row(name, side["dtype"], f"{side['seconds']:.1f}", f"{side['tokens_per_s']:.1f}",
                      f"{side['cpu_seconds']:.1f}",
                      f"{side['gflops']:.1f}", f"{side['fraction_of_matmul_peak']:.1%}",
                      f"{side['peak_memory_mb']:.0f} MB")
    Console().print(table)
    Console().print(f"speedup: [bold]{result['speedup']:.2f}x[/] (in CPU time {result['speedup_cpu_time']:.2f}x)   "
                    f"matmul peak: fp32 {fp32:.1f} GFLOP/s, "
                    f"bf16 {bf16:.1f} GFLOP/s   load average {load_before[0]:.1f} -> {load_after[0]:.1f} "
                    f"on {os.cpu_count()} cores   -> {args.out}")


def _linear_parameters(config):
    """Parameters a generated token is multiplied with: every layer's projections and the LM head."""
    hidden, inter, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
    head_dim = getattr(config, "head_dim", None) or hidden // heads
    attention = hidden * head_dim * (2 * heads + 2 * kv_heads)
    yield layers * (attention + 3 * hidden * inter)
    yield hidden * config.vocab_size


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    main()
