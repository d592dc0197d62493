"""Write run directories in the documented format (docs/architecture.md), for the dashboard's fast tests.

The job's events follow OpenAI's metrics shape (§1.8 of openai-rft-api.md) plus our `data.train` block;
its validation runs and the stand-alone eval run are written by the eval module itself
(`openrft.evals.write_eval`, aggregates from `openrft.evals.metrics`), so their format is the real one.
Values come from a seeded generator: tests compare what the dashboard shows with what was written.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

from openrft.evals import metrics
from openrft.evals.run import EvalResult, write_eval
from openrft.runs import EvalRun, OutputItem

LABELS = ["tax", "trade", "health", "energy"]
GRADERS = [("f1", "multi"), ("precision", "python"), ("recall", "python")]
ERROR_KINDS = ["sample_parse_error", "python_grader_runtime_error"]


def write_eval_run(path: Path, *, skill: float, n_items: int = 6, runs: int = 3, seed: int = 0,
                   name: str = "default") -> Path:
    """An eval run of a label task: each sample predicts each true label with probability `skill`."""
    rng = random.Random(seed)
    truths = [set(rng.sample(LABELS, rng.randint(1, 2))) for _ in range(n_items)]
    items, rewards, pairs = [], [], []
    for i, truth in enumerate(truths):
        row_rewards = []
        for r in range(runs):
            predicted = {label for label in truth if rng.random() < skill}
            if rng.random() < 0.3:
                predicted.add(rng.choice(LABELS))
            tp = len(predicted & truth)
            p = tp / len(predicted) if predicted else 0.0
            rec = tp / len(truth)
            f1 = 2 * p * rec / (p + rec) if p + rec else 0.0
            row_rewards.append(f1)
            pairs.append((predicted, truth))
            output = json.dumps({"labels": sorted(predicted)})
            items.append({
                "object": "eval.run.output_item", "id": f"outputitem_{i}_{r}", "run_id": "evalrun_test",
                "eval_id": "eval_test", "created_at": 1700000000, "status": "pass" if f1 >= 0.5 else "fail",
                "datasource_item_id": i, "datasource_item": {"id": f"doc-{i}", "labels": sorted(truth)},
                "results": [{"name": "f1", "type": "multi", "score": f1, "passed": f1 >= 0.5,
                             "sub_rewards": {"precision": p, "recall": rec}, "error_kind": None, "errors": {}}],
                "sample": {"input": [{"role": "user", "content": f"Which labels fit document {i}?"}],
                           "output": [{"role": "assistant", "content": output}],
                           "output_json": {"labels": sorted(predicted)}, "reasoning": "",
                           "finish_reason": "stop", "model": name,
                           "usage": {"prompt_tokens": 20, "completion_tokens": 8, "total_tokens": 28,
                                     "cached_tokens": 0, "reasoning_tokens": 0},
                           "error": None, "temperature": 1.0, "max_completion_tokens": 64, "top_p": 1.0,
                           "seed": 0, "latency_s": 0.1, "run": r},
            })
        rewards.append(row_rewards)
    summary = {
        "reward": metrics.reward_stats(rewards),
        "items": [{"index": i, "id": f"doc-{i}", **metrics.per_item_stats(r)} for i, r in enumerate(rewards)],
        "pass_rate": sum(1 for it in items if it["status"] == "pass") / len(items),
        "pass_threshold": 0.5,
        "criteria": [{"name": "f1", "type": "multi", "mean": sum(sum(r) for r in rewards) / len(items)}],
        "sub_rewards": {},
        "errors": {"by_kind": {}, "rate": 0.0, "sample_parse_error_rate": 0.0, "engine_error_rate": 0.0},
        "tokens": {"completion_mean": 8, "reasoning_mean": 0, "answer_mean": 8, "prompt_mean": 20,
                   "truncated_share": 0.0},
        "latency": {"sampling_s": 1.0, "grading_s": 0.1, "total_s": 1.1, "per_sample_s": 0.05,
                    "grader_mean_s": 0.001},
        "classification": metrics.classification_metrics(pairs, LABELS),
        "baselines": {"most_frequent": {"reward": metrics.reward_stats([[0.4] * runs] * n_items),
                                        "classification": {"micro": {"precision": 0.5, "recall": 0.4, "f1": 0.44},
                                                           "macro": {"precision": 0.3, "recall": 0.3, "f1": 0.3},
                                                           "samples_f1": 0.4}},
                      "random": {"reward": metrics.reward_stats([[0.2] * runs] * n_items),
                                 "classification": {"micro": {"precision": 0.3, "recall": 0.3, "f1": 0.3},
                                                    "macro": {"precision": 0.3, "recall": 0.3, "f1": 0.3},
                                                    "samples_f1": 0.2}}},
        "model": name, "runs": runs, "name": name, "sampling": {"temperature": 1.0},
    }
    run = {"object": "eval.run", "id": f"evalrun_{path.name}", "eval_id": "eval_test", "status": "completed",
           "model": name, "name": name, "created_at": int(time.time()), "report_url": None,
           "result_counts": {"total": len(items), "errored": 0,
                             "passed": sum(1 for it in items if it["status"] == "pass"),
                             "failed": sum(1 for it in items if it["status"] == "fail")},
           "per_model_usage": [], "per_testing_criteria_results": [], "data_source": {}, "metadata": {}, "error": None}
    write_eval(EvalResult(EvalRun.model_validate(run), summary, [OutputItem.model_validate(i) for i in items]), path,
               plots=False)
    return path


def write_job_run(path: Path, *, steps: int = 6, eval_interval: int = 2, status: str = "succeeded",
                  seed: int = 0, partial_last_line: bool = False) -> Path:
    """A finished (or running) job: job.json, metrics events, checkpoints and validation runs."""
    rng = random.Random(seed)
    path.mkdir(parents=True, exist_ok=True)
    job_id = f"ftjob-{path.name}"
    job = {
        "object": "fine_tuning.job", "id": job_id, "created_at": 1700000000 + seed, "status": status,
        "model": "default", "fine_tuned_model": f"ft:default:openrft:test:{job_id[-8:]}" if status == "succeeded"
        else None, "finished_at": None, "error": None, "organization_id": "org-local", "result_files": [],
        "trained_tokens": None, "training_file": "/data/eurovoc_train.jsonl", "validation_file": None, "seed": 42,
        "metadata": {"task": "eurovoc"},
        "method": {"type": "reinforcement", "reinforcement": {
            "grader": {"type": "multi", "name": "f1", "graders": {}, "calculate_output": "f1"},
            "hyperparameters": {"batch_size": 4, "n_epochs": 1, "eval_interval": eval_interval, "eval_samples": 3,
                                "learning_rate_multiplier": 1.0, "compute_multiplier": 1.0,
                                "reasoning_effort": "default"}}},
    }
    (path / "job.json").write_text(json.dumps(job, indent=2))
    lines = [{"object": "fine_tuning.job.event", "id": "ftevent-0", "created_at": 1700000000, "level": "info",
              "message": "Created fine-tuning job", "type": "message", "data": None}]
    # Step 0: the base model's validation before any update (the trainer's validate-at-start; no checkpoint).
    base = write_eval_run(path / "evals" / "step-0", skill=0.3, seed=seed * 100, name="default")
    base_reward = json.loads((base / "summary.json").read_text())["reward"]["mean"]
    lines.append({"object": "fine_tuning.job.event", "id": "ftevent-step0", "created_at": 1700000000, "level": "info",
                  "message": f"Step 0/{steps}, full validation mean reward={base_reward:.2f}", "type": "metrics",
                  "data": {"step": 0, "total_steps": steps,
                           "scores": {"valid_reward_mean": base_reward,
                                      "graders": [{"name": "f1", "type": "multi", "valid_reward_mean": base_reward}]},
                           "usage": {"samples": {}, "graders": []}, "errors": {"graders": []},
                           "timing": {"step": {"sampling": 0.0, "training": 0.0, "eval": 2.0, "full_iteration": 0.0},
                                      "graders": []}}})
    for step in range(1, steps + 1):
        is_eval = step % eval_interval == 0 or step == steps
        data = {
            "step": step, "total_steps": steps,
            "scores": {"train_reward_mean": round(0.2 + 0.05 * step + rng.uniform(-0.05, 0.05), 4),
                       "graders": [{"name": name, "type": kind,
                                    "train_reward_mean": round(rng.uniform(0.1, 0.9), 4),
                                    **({"valid_reward_mean": round(rng.uniform(0.1, 0.9), 4)} if is_eval else {})}
                                   for name, kind in GRADERS]},
            "usage": {"samples": {"train_reasoning_tokens_mean": rng.randint(0, 40),
                                  "train_reasoning_tokens_count": rng.randint(100, 400),
                                  "train_completion_tokens_mean": rng.randint(40, 90),
                                  **({"valid_reasoning_tokens_mean": rng.randint(0, 40),
                                      "valid_completion_tokens_mean": rng.randint(40, 90)} if is_eval else {})},
                      "graders": []},
            "errors": {"graders": [{"name": "f1", "type": "multi",
                                    **{f"train_{kind}_count": rng.randint(0, 3) for kind in ERROR_KINDS},
                                    **{f"train_{kind}_mean": 0.1 for kind in ERROR_KINDS}}]},
            "timing": {"step": {"sampling": round(rng.uniform(2, 4), 3), "training": round(rng.uniform(1, 2), 3),
                                "eval": round(rng.uniform(1, 3), 3) if is_eval else 0.0},
                       "graders": [{"name": "f1", "type": "multi",
                                    "train_execution_latency_mean": round(rng.uniform(0.001, 0.01), 5)}]},
            "train": {"loss": round(rng.uniform(-0.1, 0.1), 5), "kl": round(0.001 * step, 5),
                      "clip_fraction": round(rng.uniform(0, 0.2), 4), "entropy": round(rng.uniform(1, 2), 4),
                      "grad_norm": round(rng.uniform(0.1, 1), 4), "zero_signal_groups": rng.randint(0, 2),
                      "response_length_mean": rng.randint(30, 60)},
        }
        data["timing"]["step"]["full_iteration"] = round(sum(data["timing"]["step"].values()) + 0.5, 3)
        if is_eval:
            eval_dir = write_eval_run(path / "evals" / f"step-{step}", skill=min(0.95, 0.3 + 0.1 * step),
                                      seed=seed * 100 + step, name=f"ft:default:openrft:test:ckpt-step-{step}")
            valid = json.loads((eval_dir / "summary.json").read_text())["reward"]["mean"]
            data["scores"]["valid_reward_mean"] = valid
            ckpt = path / "checkpoints" / f"step-{step}"
            ckpt.mkdir(parents=True)
            (ckpt / "checkpoint.json").write_text(json.dumps({
                "object": "fine_tuning.job.checkpoint", "id": f"ftckpt_{step}", "created_at": 1700000000 + step,
                "fine_tuned_model_checkpoint": f"ft:default:openrft:test:{job_id[-8:]}:ckpt-step-{step}",
                "fine_tuning_job_id": job_id, "step_number": step,
                "metrics": {"step": step, "full_valid_mean_reward": valid,
                            "train_mean_reward": data["scores"]["train_reward_mean"]}}))
        message = f"Step {step}/{steps}, train mean reward={data['scores']['train_reward_mean']:.2f}"
        lines.append({"object": "fine_tuning.job.event", "id": f"ftevent-{step}", "created_at": 1700000000 + step,
                      "level": "info", "message": message, "type": "metrics", "data": data})
        if step == 3:  # a reward-hacking guard fires (openrft.training.guards' event shape)
            guard = {"check": "response_length", "verdict": "warn", "step": step, "value": 0.35,
                     "message": "mean answer length fell to 35% of its start"}
            lines.append({"object": "fine_tuning.job.event", "id": f"ftevent-guard-{step}",
                          "created_at": 1700000000 + step, "level": "warn", "message": guard["message"],
                          "type": "message", "data": {"guard": guard}})
    text = "".join(json.dumps(line) + "\n" for line in lines)
    if partial_last_line:
        text += '{"object": "fine_tuning.job.event", "id": "ftevent-x", "data": {"step": 99'
    (path / "events.jsonl").write_text(text)
    return path
