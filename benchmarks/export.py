"""Export of a LoRA checkpoint of the embedded model: time and size of each format, the GGUF answers against the
checkpoint's, and tokens/s of the exported GGUF under llama.cpp (llama-cpp-python, when installed) beside
openrft's transformers engine on the same prompts.

    python benchmarks/export.py                         # trains a 2-step LoRA job first; writes results/export.json
    python benchmarks/export.py --checkpoint RUN_OR_CKPT

Without --checkpoint, a 2-step LoRA job (rank 16 on every projection, the tests' tiny length task) is trained
in a private data directory; a demo checkpoint has the same shapes, so the same export figures. The GGUF
files are loaded back by transformers (`gguf_file=`), and each one's greedy answers and last-position logits
are compared with the checkpoint's on PROMPTS.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "export.json"
PROMPTS = [[{"role": "user", "content": f"Write one short sentence about {topic}."}]
           for topic in ("the sea", "a cat", "rain", "the moon", "bread", "a train", "winter", "a river")]
MAX_TOKENS = 48
GRADER = {"type": "python", "name": "length_30",
          "source": "def grade(sample, item):\n    n = len(sample['output_text'])\n"
                    "    return max(0.0, 1.0 - abs(n - item['target']) / item['target'])\n"}


def train_checkpoint(work: Path) -> Path:
    """The run directory of a 2-step LoRA job of the embedded model."""
    from openrft import paths
    from openrft.models import resolve_model
    from openrft.training import create_job, run_job

    model_dir = resolve_model("default").path  # converted once in the usual data directory
    home = work / "home"
    (home / "models").mkdir(parents=True)
    (home / "models" / model_dir.name).symlink_to(model_dir)
    os.environ["OPENRFT_HOME"] = str(home)
    assert paths.home() == home
    for name, n in (("train.jsonl", 4), ("valid.jsonl", 2)):
        rows = [{"messages": PROMPTS[i], "target": 30, "id": f"{name[0]}{i}"} for i in range(n)]
        (work / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    body = {"model": "default", "training_file": str(work / "train.jsonl"),
            "validation_file": str(work / "valid.jsonl"), "suffix": "bench", "seed": 7,
            "method": {"type": "reinforcement", "reinforcement": {"grader": GRADER, "hyperparameters": {
                "batch_size": 2, "n_epochs": 2, "compute_multiplier": 0.25, "eval_interval": 2, "eval_samples": 1}}},
            "openrft": {"max_tokens": 8, "max_steps": 2, "learning_rate": 1e-3, "trackers": []}}
    run = work / "run"
    create_job(body, run_dir=run)
    job = run_job(run, progress=False)
    assert job["status"] == "succeeded", job.get("error")
    return run


def last_logits(model, tokenizer):
    import torch

    rows = []
    for messages in PROMPTS:
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                            return_dict=True)["input_ids"]
        with torch.no_grad():
            rows.append(model(ids).logits[0, -1].float())
    return torch.stack(rows)


def greedy_ids(model, tokenizer, max_new_tokens: int = 16) -> list[list[int]]:
    import torch

    out = []
    for messages in PROMPTS:
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                            return_dict=True)["input_ids"]
        with torch.no_grad():
            gen = model.generate(ids, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id or 0)
        out.append(gen[0, ids.shape[1]:].tolist())
    return out


def agreement(a: list[list[int]], b: list[list[int]]) -> dict:
    """Identical answers, and the share of tokens equal up to the first difference of each answer."""
    same_prefix = total = 0
    for x, y in zip(a, b):
        n = 0
        while n < min(len(x), len(y)) and x[n] == y[n]:
            n += 1
        same_prefix += n
        total += max(len(x), len(y))
    return {"identical_answers": sum(x == y for x, y in zip(a, b)), "answers": len(a),
            "tokens_before_first_difference": round(same_prefix / max(total, 1), 3)}


def engine_tokens_per_s(checkpoint: Path) -> dict:
    from openrft.engines import SamplingParams, get_engine

    engine = get_engine(str(checkpoint), device="cpu")
    params = SamplingParams(n=1, temperature=0.0, max_tokens=MAX_TOKENS)
    engine.generate(PROMPTS[:1], params)  # warm-up
    began = time.perf_counter()
    samples = [s for group in engine.generate(PROMPTS, params) for s in group]
    seconds = time.perf_counter() - began
    tokens = sum(s.completion_tokens for s in samples)
    return {"engine": "openrft transformers (checkpoint, f32, batch of 8 prompts)", "tokens": tokens,
            "seconds": round(seconds, 2), "tokens_per_s": round(tokens / seconds, 1)}


def llama_cpp_tokens_per_s(gguf_file: Path) -> dict | None:
    try:
        from llama_cpp import Llama
    except ImportError:
        return None
    llm = Llama(model_path=str(gguf_file), n_ctx=1024, n_threads=os.cpu_count() or 1, verbose=False, seed=0)
    llm.create_chat_completion(messages=PROMPTS[0], max_tokens=4, temperature=0.0)  # warm-up
    began = time.perf_counter()
    tokens = 0
    for messages in PROMPTS:
        reply = llm.create_chat_completion(messages=messages, max_tokens=MAX_TOKENS, temperature=0.0)
        tokens += reply["usage"]["completion_tokens"]
    seconds = time.perf_counter() - began
    return {"engine": f"llama.cpp via llama-cpp-python ({gguf_file.name}, one prompt at a time)", "tokens": tokens,
            "seconds": round(seconds, 2), "tokens_per_s": round(tokens / seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", help="a checkpoint or run directory (default: train a 2-step LoRA job)")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()

    import torch
    from transformers import AutoModelForCausalLM

    from openrft.export import export, resolve_checkpoint
    from openrft.models import load_model

    torch.set_num_threads(os.cpu_count() or 1)
    work = Path(tempfile.mkdtemp(prefix="openrft-export-bench-"))
    began = time.perf_counter()
    source = Path(args.checkpoint) if args.checkpoint else train_checkpoint(work)
    train_s = None if args.checkpoint else round(time.perf_counter() - began, 1)
    ref = resolve_checkpoint(str(source))
    print(f"checkpoint {ref.path} (base {ref.base.name if ref.base else '-'})")
    adapter_bytes = sum(p.stat().st_size for p in ref.path.glob("adapter_model.*"))

    exports = {}
    for fmt, quant in (("adapter", None), ("hf", "f32"), ("hf", "f16"), ("gguf", "f32"), ("gguf", "f16"),
                       ("gguf", "q8_0")):
        name = fmt + (f"-{quant}" if quant else "")
        result = export(str(ref.path), fmt, work / "exports" / name, quant=quant)
        exports[name] = {"path": str(result.path), "seconds": round(result.seconds, 2),
                         "bytes": result.size_bytes, "MiB": round(result.size_bytes / 2**20, 1),
                         "files": {p.name: p.stat().st_size for p in result.files}}
        print(f"{name:10s} {result.seconds:6.1f} s  {result.size_bytes / 2**20:8.1f} MiB")

    model, tokenizer = load_model(str(ref.path))
    model.eval()
    reference_logits = last_logits(model, tokenizer)
    reference_answers = greedy_ids(model, tokenizer)
    fidelity = {}
    for name in ("hf-f32", "gguf-f32", "gguf-f16", "gguf-q8_0"):
        path = Path(exports[name]["path"])
        loaded = (AutoModelForCausalLM.from_pretrained(path) if name.startswith("hf")
                  else AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name)).eval()
        difference = (last_logits(loaded, tokenizer) - reference_logits).abs()
        fidelity[name] = {"max_abs_logit_difference": round(difference.max().item(), 5),
                          "mean_abs_logit_difference": round(difference.mean().item(), 5),
                          "same_top_token": int((last_logits(loaded, tokenizer).argmax(-1)
                                                 == reference_logits.argmax(-1)).sum()),
                          **agreement(greedy_ids(loaded, tokenizer), reference_answers)}
        print(name, fidelity[name])

    speed = [engine_tokens_per_s(ref.path)]
    for name in ("gguf-f16", "gguf-q8_0"):
        measured = llama_cpp_tokens_per_s(Path(exports[name]["path"]))
        if measured:
            speed.append(measured)
    for row in speed:
        print(row)
    from importlib.metadata import version

    result = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__,
                          "transformers": version("transformers"), "peft": version("peft"), "gguf": version("gguf"),
                          "load_average_at_end": [round(x, 2) for x in os.getloadavg()]},
              "checkpoint": str(ref.path), "adapter_bytes": adapter_bytes, "train_seconds": train_s,
              "prompts": len(PROMPTS), "max_tokens": MAX_TOKENS, "exports": exports, "fidelity": fidelity,
              "tokens_per_s": speed, "llama_cpp": any("llama.cpp" in row["engine"] for row in speed)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
