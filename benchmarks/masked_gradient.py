"""Does the corrected (masked) gradient learn faster or slower than the old (unmasked) one, at equal steps and seed?

    python benchmarks/masked_gradient.py --seeds-dir DIR      # DIR: the output of `openrft demo --rft-only --seeds N`
    python benchmarks/masked_gradient.py --seeds-dir DIR --seed 43

It may start while the demo still runs: it trains, then stops until DIR/seeds.json exists; run it again then.

It trains the quick demo once more for one of DIR's seeds with the trainer's masks withheld: the sampler is
unchanged (grammar, canonical labels, temperature: the same draws, the same seed), but the trainer recomputes
each token's log-probability as the unmasked log_softmax(logits / T), as openrft did before issue 14. Ratio and
loss then agree with each other (both unmasked), so this is exactly the old gradient, with its −A·∇log Z term
on every constrained token.

Then it compares, for the same seed:
- the validation reward at every validation step (same 24 records of 24 acts, 3 runs each), masked vs unmasked;
- the two best checkpoints on DIR's held-out rows (the same records the demo's seeds were scored on): the paired
  difference masked − unmasked with its 95% CI clustered by act.

Writes `DIR/unmasked-<seed>/` (the run) and `results/masked_gradient.json`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from unittest import mock

RESULTS = Path(__file__).resolve().parent / "results" / "masked_gradient.json"


def validation_curve(run_dir: Path) -> dict[int, float]:
    """The validation reward (mean over items and runs) at each validation step of a run."""
    curve = {}
    for path in (run_dir / "evals").glob("step-*/summary.json"):
        curve[int(path.parent.name.split("-")[1])] = json.loads(path.read_text())["reward"]["mean"]
    return dict(sorted(curve.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds-dir", type=Path, required=True,
                        help="the output folder of `openrft demo --rft-only --seeds N`")
    parser.add_argument("--seed", type=int, default=None, help="which of its seeds to re-train (default: the first)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    from rich.console import Console

    from openrft.demo import held_out_comparison, judge, train_one, validation_groups
    from openrft.engines.transformers import TransformersEngine
    from openrft.evals import load_eval
    from openrft.training import load_job

    console = Console()
    seed_dirs = sorted(args.seeds_dir.glob("seed-*"), key=lambda p: int(p.name.split("-")[1]))
    first_seed = int(seed_dirs[0].name.split("-")[1])
    seed = first_seed if args.seed is None else args.seed
    masked_dir = args.seeds_dir / f"seed-{seed}"
    run_dir = args.seeds_dir / f"unmasked-{seed}"
    started = time.time()
    if not (run_dir / "verdict.json").is_file():  # train (can start while the demo's other seeds still run)
        with mock.patch.object(TransformersEngine, "replay_masks", lambda _self, _sample: None):
            run_dir, verdict = train_one(full=False, long=False, output_dir=run_dir, max_steps=None, seed=seed,
                                         console=console)
        if verdict["status"] != "succeeded":
            raise SystemExit(f"the unmasked run failed: {verdict}")
        (run_dir / "verdict.json").write_text(json.dumps(verdict, indent=2))
    if not (args.seeds_dir / "seeds.json").is_file():
        raise SystemExit(f"trained {run_dir}; run this again once `openrft demo --rft-only --seeds` has written "
                         "seeds.json")
    seeds = json.loads((args.seeds_dir / "seeds.json").read_text())
    masked = json.loads((masked_dir / "verdict.json").read_text())
    unmasked = json.loads((run_dir / "verdict.json").read_text())
    if not unmasked.get("held_out"):  # the same held-out rows as the demo's seeds: apart from all their validations
        excluded = set().union(*(validation_groups(d) for d in seed_dirs)) | validation_groups(run_dir)
        unmasked["held_out"] = held_out_comparison(run_dir, unmasked["best_step"], console=console,
                                                   exclude_groups=excluded, draw_seed=first_seed + 1,
                                                   base_from=masked_dir / "held_out" / "base")
        (run_dir / "verdict.json").write_text(json.dumps(unmasked, indent=2))
    unmasked = json.loads((run_dir / "verdict.json").read_text())
    if unmasked["held_out"]["held_out_groups"] != masked["held_out"]["held_out_groups"]:
        raise SystemExit("the unmasked run was scored on other held-out acts than the masked one: not comparable")

    group_key = load_job(run_dir)["openrft"].get("group_key")
    old = load_eval(run_dir / "held_out" / f"step-{unmasked['best_step']}")
    new = load_eval(masked_dir / "held_out" / f"step-{masked['best_step']}")
    head_to_head = judge(old, new, group_key, "held out, masked − unmasked checkpoint", console)
    gaps = {}
    for name, d in (("masked", masked_dir), ("unmasked", run_dir)):
        events = [json.loads(line) for line in (d / "events.jsonl").read_text().splitlines() if line.strip()]
        gaps[name] = [e["data"]["train"]["sampler_logprob_gap"] for e in events
                      if e.get("type") == "metrics" and "train" in (e.get("data") or {})]
    result = {
        "seed": seed, "seeds_dir": str(args.seeds_dir),
        "validation": {"masked": validation_curve(masked_dir), "unmasked": validation_curve(run_dir)},
        "best_step": {"masked": masked["best_step"], "unmasked": unmasked["best_step"]},
        "held_out_reward": {"base": masked["held_out"]["base_reward"],
                            "masked": masked["held_out"]["checkpoint_reward"],
                            "unmasked": unmasked["held_out"]["checkpoint_reward"]},
        "held_out_gain_vs_base": {"masked": [masked["held_out"]["gain"], masked["held_out"]["gain_ci95"]],
                                  "unmasked": [unmasked["held_out"]["gain"], unmasked["held_out"]["gain_ci95"]]},
        "masked_minus_unmasked": {k: head_to_head[k] for k in ("gain", "gain_ci95", "records")},
        "sampler_logprob_gap_per_step": gaps,
        "seconds_this_call": round(time.time() - started, 1),
        "held_out_records": masked["held_out"]["rows"], "held_out_groups": masked["held_out"]["groups"],
        "seeds_summary_gain": seeds.get("gain"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    console.print_json(json.dumps(result))


if __name__ == "__main__":
    main()
