"""Seconds per RL step and reward: openrft's trainer against TRL's GRPOTrainer, same model, data and batch.

    python benchmarks/train_step.py             # writes benchmarks/results/train_step.json
    python benchmarks/train_step.py --steps 1   # a quick run: 1 warm-up + 1 measured step per configuration
    python benchmarks/train_step.py --configs openrft-lora,trl-lora,trl-full --free-text

Each configuration runs in its own subprocess, one after the other, so that its peak memory (ru_maxrss) is
its own: `openrft-lora` and `openrft-full` (a job written with openrft.training.create_job and run with
run_job) and `trl-lora` (trl.GRPOTrainer); `trl-full` can be asked for by name.

The same for every configuration:

- the embedded model (SmolLM2-135M-Instruct), float32 on the CPU, `--threads` torch threads (default 1:
  on a shared machine, OpenMP threads that spin-wait for a busy core made a 2-thread decode step ~18× slower
  than a 1-thread one at load average 9; both frameworks get the same setting);
- the rows and their order: the first `(warmup + steps) × prompts` rows of the EuroVoc task (the offline
  EuroVoc task when ../shared/data is absent), visited in the order openrft's trainer draws them
  (`epoch_order`, balancing off); TRL reads them in that order, unshuffled, so step k samples the same
  prompts in both;
- `prompts` prompts × a group of 8 samples per step, at most 128 new tokens, temperature 1, top_p 1;
- the task's response_format (JSON with the 21 domain names), enforced while sampling by the same xgrammar
  grammar: openrft's engine applies it itself; for TRL, whose transformers generation has no structured
  outputs (only its vLLM path has), `model.generate` gets an xgrammar LogitsProcessor, the way a
  transformers user does it. `--free-text` drops it on both sides (the embedded model then rarely names a
  domain: every reward is 0, openrft skips the update of such zero-signal groups and TRL does not, so
  that mode measures sampling more than training);
- the reward: the task's grader (multilabel F1, python). openrft grades through its sandboxed grader pool
  (the path of every job); TRL calls the same python `grade` function in-process;
- GRPO without KL (β = 0): group advantages scaled by the group's std, clipped ratio (ε = 0.2), the loss
  summed over tokens and divided by the batch's token count (TRL's `dapo`), `updates` optimizer passes per
  batch (openrft `updates_per_batch`, TRL `num_iterations`), AdamW at a constant learning rate (1e-4 for
  LoRA, 1e-5 for full fine-tuning: openrft's defaults), gradient norm clipped at 1, no weight decay,
  LoRA r = 16, α = 32, no dropout, on q/k/v/o/gate/up/down; no gradient checkpointing and no bf16 (TRL
  turns both on by default; off is TRL's faster setting on a CPU).

What differs is each framework's machinery, the thing measured: openrft samples with its own engine
(openrft.engines.transformers: each prompt prefilled once, its KV cache shared by the group's samples)
and computes the update's log-probabilities group by group with the prompt run once per group
(openrft.training.algorithm.sequence_logprobs); TRL samples with `model.generate` over the 16 sequences
(each prompt repeated 8 times) and runs prompt + completion for every sequence, `--trl-micro-batch`
sequences at a time (4: all 16 at once took ~21 GB and were killed by the out-of-memory killer here).
With `updates` > 1, TRL also runs a no-grad pass for the old log-probabilities, which openrft takes from
its first pass.

Measured, per configuration: seconds per RL step (sampling + grading + update; openrft's
`timing.step.full_iteration`, TRL's time from the first optimizer step of a generation to the end of its
last), their median over the measured steps (the warm-up steps are left out), the sampling / update split,
CPU seconds of the training process per step (openrft's grader pool runs in other processes, not
counted), the mean train reward and completion length of each step, the peak RSS of the process and
the load average. Steps are as long as the samples: compare the tokens per sample column. One run, on a
shared machine absolute times move with the load; the ratio is what the benchmark is for. A few steps
move a 135M model very little: the reward columns show that both learn from the same signal (and
that openrft's numbers are not bought with a worse reward), not which learns faster.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from statistics import mean, median

from rich.console import Console
from rich.table import Table

RESULTS = Path(__file__).resolve().parent / "results" / "train_step.json"
CONFIGS = ("openrft-lora", "openrft-full", "trl-lora", "trl-full")
DEFAULT_CONFIGS = ("openrft-lora", "openrft-full", "trl-lora")
SEED = 1234
LORA = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.0,
        "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]}
LEARNING_RATE = {"lora": 1e-4, "full": 1e-5}
console = Console(stderr=True)


def benchmark_rows(n: int) -> tuple[str, list[dict], dict, dict | None]:
    """The first `n` training rows of the EuroVoc task (its offline variant without the data folder), with
    the task's name, grader and response_format."""
    from openrft.tasks import get_task, task_available

    name = "eurovoc" if task_available("eurovoc")[0] else "eurovoc-offline"
    task = get_task(name)
    rows = task.rows("train")[:n]
    if len(rows) < n:
        raise SystemExit(f"task {name} has {len(rows)} training rows; the benchmark needs {n}")
    return name, rows, task.grader, task.response_format


def python_grade_function(grader: dict):
    """The grader's python `grade(sample, item)` as an in-process function (TRL's reward).

    A python grader, or a multi grader whose `calculate_output` names one python sub-grader (the ready-made
    multilabel graders: the reward is that sub-grader's value).
    """
    if grader["type"] == "multi":
        if grader["calculate_output"] not in grader["graders"]:
            raise SystemExit(f"grader {grader.get('name')}: calculate_output {grader['calculate_output']!r} is a "
                             "formula; the TRL side needs it to name one python sub-grader")
        grader = grader["graders"][grader["calculate_output"]]
    if grader["type"] != "python":
        raise SystemExit(f"grader type {grader['type']!r}: the TRL side runs python graders only")
    namespace = {"__name__": "grader"}
    exec(compile(grader["source"], grader.get("name", "grader"), "exec"), namespace)
    return namespace["grade"]


def constrain_generate(model, tokenizer, schema: dict) -> None:
    """Make `model.generate` sample only JSON that matches `schema`, the way a transformers user does it.

    TRL offers grammar-constrained sampling only through vLLM; with transformers generation a user passes
    an xgrammar `LogitsProcessor` (a fresh one per call). The grammar is the one openrft's engine builds
    for a json_schema response_format: a structural tag with at most 2 whitespace characters in a row.
    The wrapper sits on the base model, so it also applies under a peft adapter (PeftModel.generate calls it).
    """
    import xgrammar as xgr
    from xgrammar.contrib.hf import LogitsProcessor

    stop = sorted({i for i in (model.generation_config.eos_token_id, tokenizer.eos_token_id) if i is not None})
    info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=model.config.vocab_size, stop_token_ids=stop)
    tag = {"type": "structural_tag", "format": {"type": "json_schema", "json_schema": schema, "max_whitespace_cnt": 2}}
    compiled = xgr.GrammarCompiler(info).compile_structural_tag(json.dumps(tag))
    plain_generate = model.generate

    def generate(*args, **kwargs):
        kwargs["logits_processor"] = [*(kwargs.get("logits_processor") or []), LogitsProcessor(compiled)]
        return plain_generate(*args, **kwargs)

    model.generate = generate


def parsed_json(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return None


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# ---------------------------------------------------------------------------------------------- workers

def run_openrft(config: str, work: Path, setup: dict) -> dict:
    """One openrft job on the benchmark rows (no validation set, no trackers); its metrics events, per step.

    The job is given one step more than measured and cancelled when that step begins (`should_stop`), so that
    the step boundaries give each step's wall and CPU time and no final checkpoint or report is written.
    """
    from openrft.training import create_job, read_events, run_job

    finetune = "full" if config == "openrft-full" else "lora"
    steps = setup["warmup"] + setup["steps"]
    body = {
        "model": "default", "training_file": str(work / "train.jsonl"), "seed": SEED,
        "method": {"type": "reinforcement", "reinforcement": {
            "grader": setup["grader"],
            "response_format": setup["response_format"],
            "hyperparameters": {"batch_size": setup["prompts"], "n_epochs": 2, "compute_multiplier": setup["group"] / 8,
                                "eval_interval": 1000}}},
        "openrft": {"finetune": finetune, "lora_rank": LORA["r"], "lora_alpha": LORA["lora_alpha"],
                    "lora_dropout": LORA["lora_dropout"], "lora_target_modules": LORA["target_modules"],
                    "learning_rate": LEARNING_RATE[finetune], "max_tokens": setup["max_tokens"],
                    "temperature": 1.0, "top_p": 1.0, "updates_per_batch": setup["updates"], "kl_coef": 0.0,
                    "clip_epsilon": 0.2, "scale_rewards": True, "max_grad_norm": 1.0, "weight_decay": 0.0,
                    "balance": False, "validate_at_start": False, "trackers": [], "max_steps": steps + 1},
    }
    run_dir = work / config
    job = create_job(body, run_dir=run_dir)
    resolved = job["method"]["reinforcement"]["hyperparameters"]["resolved"]
    if resolved["group_size"] != setup["group"] or resolved["total_steps"] != steps + 1:
        raise SystemExit(f"openrft resolved group_size={resolved['group_size']}, total_steps={resolved['total_steps']}")
    boundaries: list[tuple[float, float]] = []  # (wall, cpu) when each step begins

    def should_stop():
        boundaries.append((time.perf_counter(), time.process_time()))
        return "cancel" if len(boundaries) > steps else None

    job = run_job(run_dir, should_stop=should_stop)
    if job["status"] != "cancelled" or len(boundaries) != steps + 1:
        raise SystemExit(f"openrft job {job['status']} after {len(boundaries) - 1} steps: {job.get('error')}")
    per_step = []
    for event in read_events(run_dir):
        data = event.get("data") or {}
        if event.get("type") != "metrics" or not data.get("step"):
            continue
        k, timing = data["step"], data["timing"]["step"]
        per_step.append({"step": k, "seconds": timing["full_iteration"], "sampling": timing["sampling"],
                         "update": timing["training"], "cpu_seconds": boundaries[k][1] - boundaries[k - 1][1],
                         "reward": data["scores"]["train_reward_mean"],
                         "completion_tokens": data["train"]["response_length_mean"]})
    return {"steps": per_step}


def run_trl(config: str, work: Path, setup: dict) -> dict:
    """trl.GRPOTrainer on the same rows in the same order; per RL step: wall time, reward, completion length."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from openrft.data.order import epoch_order
    from openrft.models import resolve_model

    rows = [json.loads(line) for line in (work / "train.jsonl").read_text().splitlines()]
    order = epoch_order(rows, n_epochs=1, seed=SEED, balance=False, label_key=None)  # openrft's visiting order
    items = [json.dumps({k: v for k, v in rows[i].items() if k not in ("messages", "tools")}) for i in order]
    dataset = Dataset.from_list([{"prompt": rows[i]["messages"], "item": item} for i, item in zip(order, items)])
    grade = python_grade_function(setup["grader"])
    generations: list[dict] = []  # one entry per generation = per RL step

    def multilabel_reward(prompts, completions, completion_ids, item, **_):  # noqa: ARG001 (TRL passes them)
        texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
        rewards = [float(grade({"output_text": t, "output_json": parsed_json(t), "output_tools": []}, json.loads(it)))
                   for t, it in zip(texts, item)]
        generations.append({"graded_at": time.perf_counter(), "reward": mean(rewards),
                            "completion_tokens": mean(len(ids) for ids in completion_ids)})
        return rewards

    class StepTimes(TrainerCallback):
        def __init__(self):
            self.begin, self.end = [], []

        def on_step_begin(self, args, state, control, **kwargs):  # noqa: ARG002 (TRL callback signature)
            self.begin.append((time.perf_counter(), time.process_time()))

        def on_step_end(self, args, state, control, **kwargs):  # noqa: ARG002 (TRL callback signature)
            self.end.append((time.perf_counter(), time.process_time()))

    finetune = "full" if config == "trl-full" else "lora"
    path = str(resolve_model("default").path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if setup["response_format"]:
        constrain_generate(model, tokenizer, setup["response_format"]["json_schema"]["schema"])
    steps, updates = setup["warmup"] + setup["steps"], setup["updates"]
    batch, micro = setup["prompts"] * setup["group"], setup["trl_micro_batch"]
    if batch % micro:
        raise SystemExit(f"--trl-micro-batch {micro} must divide the step's {batch} sequences")
    args = GRPOConfig(
        output_dir=str(work / config), seed=SEED, use_cpu=True, bf16=False, fp16=False, gradient_checkpointing=False,
        per_device_train_batch_size=micro, gradient_accumulation_steps=batch // micro,  # one generation of `batch`
        num_generations=setup["group"], max_completion_length=setup["max_tokens"], temperature=1.0, top_p=1.0,
        learning_rate=LEARNING_RATE[finetune], lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0,
        max_grad_norm=1.0, beta=0.0, epsilon=0.2, num_iterations=updates, loss_type="dapo", scale_rewards="group",
        max_steps=steps * updates, shuffle_dataset=False, logging_steps=1, report_to="none", save_strategy="no",
        dataloader_num_workers=0, disable_tqdm=False,
    )
    timer = StepTimes()
    trainer = GRPOTrainer(model=model, processing_class=tokenizer, reward_funcs=multilabel_reward, args=args,
                          train_dataset=dataset, callbacks=[timer],
                          peft_config=LoraConfig(task_type="CAUSAL_LM", **LORA) if finetune == "lora" else None)
    trainer.train()
    if len(generations) != steps or len(timer.end) != steps * updates:
        raise SystemExit(f"TRL ran {len(timer.end)} optimizer steps and {len(generations)} generations; "
                         f"expected {steps * updates} and {steps}")
    per_step = []
    for k, gen in enumerate(generations):
        (began, cpu_began), (ended, cpu_ended) = timer.begin[k * updates], timer.end[(k + 1) * updates - 1]
        per_step.append({"step": k + 1, "seconds": ended - began, "sampling": gen["graded_at"] - began,
                         "update": ended - gen["graded_at"], "cpu_seconds": cpu_ended - cpu_began,
                         "reward": gen["reward"],
                         "completion_tokens": gen["completion_tokens"]})
    return {"steps": per_step}


def worker(config: str, work: Path) -> None:
    """Run one configuration and write WORK/<config>.json (steps, peak RSS, versions)."""
    import torch

    setup = json.loads((work / "setup.json").read_text())
    if setup["threads"]:
        torch.set_num_threads(setup["threads"])
    began, load_start = time.perf_counter(), os.getloadavg()[0]
    try:
        result = (run_trl if config.startswith("trl") else run_openrft)(config, work, setup)
    except BaseException as exc:  # the parent reports it: the last lines of the traceback
        import traceback

        lines = traceback.format_exception(exc)
        (work / f"{config}.error").write_text("".join(lines[-3:]).strip())
        raise
    result.update(config=config, wall_seconds=time.perf_counter() - began, peak_rss_mib=peak_rss_mib(),
                  load_average_1min={"start": load_start, "end": os.getloadavg()[0]})
    (work / f"{config}.json").write_text(json.dumps(result, indent=2))


# ---------------------------------------------------------------------------------------------- parent

def run_worker(config: str, work: Path, env: dict) -> tuple[int, str]:
    """Run one configuration in a subprocess (its progress on this terminal); returns (exit code, error)."""
    proc = subprocess.run([sys.executable, __file__, "--worker", config, "--work", str(work)], env=env)
    error = work / f"{config}.error"
    if proc.returncode == -9:
        return proc.returncode, "killed by SIGKILL (the kernel's out-of-memory killer, see dmesg)"
    return proc.returncode, error.read_text() if error.is_file() else ""


def summarize(result: dict, warmup: int) -> dict:
    measured = [s for s in result["steps"] if s["step"] > warmup]
    return {"seconds_per_step_median": median(s["seconds"] for s in measured),
            "cpu_seconds_per_step_median": median(s["cpu_seconds"] for s in measured),
            "sampling_seconds_median": median(s["sampling"] for s in measured),
            "update_seconds_median": median(s["update"] for s in measured),
            "reward_last_step": result["steps"][-1]["reward"],
            "reward_mean_measured": mean(s["reward"] for s in measured),
            "completion_tokens_mean": mean(s["completion_tokens"] for s in measured),
            "peak_rss_mib": result["peak_rss_mib"]}


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("torch", "transformers", "peft", "trl", "accelerate"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="measured steps per configuration")
    parser.add_argument("--warmup", type=int, default=1, help="steps run first and left out of the timing")
    parser.add_argument("--prompts", type=int, default=2, help="prompts per step")
    parser.add_argument("--group", type=int, default=8, help="samples per prompt")
    parser.add_argument("--max-tokens", type=int, default=128, help="completion length (new tokens at most)")
    parser.add_argument("--updates", type=int, default=1,
                        help="optimizer passes per batch (openrft updates_per_batch, TRL num_iterations)")
    parser.add_argument("--trl-micro-batch", type=int, default=4,
                        help="sequences per TRL forward/backward; gradient accumulation makes up the step (all 16 "
                             "at once without gradient checkpointing need ~21 GB)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads per process (0: torch's default); see the module docstring")
    parser.add_argument("--free-text", action="store_true",
                        help="sample free text on both sides (no response_format); the grader parses the text")
    parser.add_argument("--configs", default=",".join(DEFAULT_CONFIGS),
                        help=f"comma-separated, of {', '.join(CONFIGS)}")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--worker", choices=CONFIGS, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.work)
        return
    if args.steps < 1 or args.warmup < 0:
        parser.error("--steps must be at least 1 and --warmup at least 0")
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        parser.error(f"unknown configuration(s) {unknown}; choose from {', '.join(CONFIGS)}")

    n_rows = (args.warmup + args.steps) * args.prompts
    task, rows, grader, response_format = benchmark_rows(n_rows)
    setup = {"task": task, "rows": n_rows, "prompts": args.prompts, "group": args.group, "max_tokens": args.max_tokens,
             "steps": args.steps, "warmup": args.warmup, "updates": args.updates,
             "trl_micro_batch": args.trl_micro_batch, "threads": args.threads, "seed": SEED, "lora": LORA,
             "learning_rate": LEARNING_RATE, "grader": grader,
             "response_format": None if args.free_text else response_format}
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="openrft-bench-") as tmp:
        work = Path(tmp)
        (work / "train.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
        (work / "setup.json").write_text(json.dumps(setup))
        env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
        if args.threads:
            env.update(OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
        for config in configs:
            console.rule(f"[bold]{config}[/]: {args.warmup} warm-up + {args.steps} measured steps of "
                         f"{args.prompts} prompts × {args.group} samples, ≤{args.max_tokens} tokens ({task}, "
                         f"{'free text' if args.free_text else 'json_schema'})")
            returncode, error = run_worker(config, work, env)
            out = work / f"{config}.json"
            if returncode or not out.is_file():
                console.print(f"[red]{config} failed (exit code {returncode}):[/] {error}")
                results[config] = {"error": error, "exit_code": returncode}
                continue
            result = json.loads(out.read_text())
            result["summary"] = summarize(result, args.warmup)
            results[config] = result

    comparison = compare(results)
    report = {"benchmark": "train_step", "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                          "cpu_count": os.cpu_count(), "python": platform.python_version(), **versions()},
              "setup": {k: v for k, v in setup.items() if k not in ("grader", "response_format")}
              | {"grader": grader.get("name"),
                 "response_format": "free text" if args.free_text else "the task's json_schema"},
              "configs": results, "comparison": comparison}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print_table(results, comparison)
    console.print(f"written: {args.out}")


def compare(results: dict) -> dict:
    """TRL's seconds per step over openrft's (LoRA against LoRA, full against full) and the reward difference."""
    out = {}
    for kind in ("lora", "full"):
        ours, theirs = results.get(f"openrft-{kind}", {}), results.get(f"trl-{kind}", {})
        if "summary" in ours and "summary" in theirs:
            a, b = ours["summary"], theirs["summary"]
            speedup = b["seconds_per_step_median"] / a["seconds_per_step_median"]
            out[kind] = {"speedup": speedup,
                         "speedup_cpu_seconds": b["cpu_seconds_per_step_median"] / a["cpu_seconds_per_step_median"],
                         "reward_last_step_delta": a["reward_last_step"] - b["reward_last_step"],
                         "reward_mean_measured_delta": a["reward_mean_measured"] - b["reward_mean_measured"],
                         "target_2x_met": speedup >= 2.0}
    return out


def print_table(results: dict, comparison: dict) -> None:
    table = Table(title="Seconds per RL step (median of the measured steps) and reward")
    for column in ("configuration", "s/step", "CPU s/step", "sampling s", "update s", "tokens/sample",
                   "reward last", "reward mean", "peak RSS MiB", "load"):
        table.add_column(column, justify="left" if column == "configuration" else "right")
    for name, result in results.items():
        if "summary" not in result:
            table.add_row(name, "[red]failed[/]", *[""] * 8)
            continue
        s, load = result["summary"], result["load_average_1min"]
        table.add_row(name, f"{s['seconds_per_step_median']:.1f}", f"{s['cpu_seconds_per_step_median']:.1f}",
                      f"{s['sampling_seconds_median']:.1f}", f"{s['update_seconds_median']:.1f}",
                      f"{s['completion_tokens_mean']:.0f}", f"{s['reward_last_step']:.3f}",
                      f"{s['reward_mean_measured']:.3f}", f"{s['peak_rss_mib']:.0f}",
                      f"{load['start']:.1f}–{load['end']:.1f}")
    Console().print(table)
    for kind, c in comparison.items():
        Console().print(f"{kind}: openrft is {c['speedup']:.2f}× TRL's speed per step "
                        f"({c['speedup_cpu_seconds']:.2f}× in CPU seconds) "
                        f"(target 2×: {'met' if c['target_2x_met'] else 'not met'}); reward difference "
                        f"(openrft − TRL) last step {c['reward_last_step_delta']:+.3f}, "
                        f"mean {c['reward_mean_measured_delta']:+.3f}")


if __name__ == "__main__":
    main()
