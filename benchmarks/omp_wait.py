"""OpenMP wait policy: the embedded model's decode step with libgomp's spinning wait, with PASSIVE and with a
short spin (GOMP_SPINCOUNT), idle and with a competing process, side by side in one run.

    python benchmarks/omp_wait.py              # writes results/omp_wait.json
    python benchmarks/omp_wait.py --forwards 10

`openrft/__init__.py` sets OMP_WAIT_POLICY=PASSIVE (unless the environment sets it) before torch loads. This
measures why: one forward pass of 64 rows x 1 token (one decoding step of an RFT group batch) with torch's
default threads, each configuration in its own subprocess (the policy is read once, when libgomp loads), and
the two policies alternated `--repeats` times. "contended" runs a second process that keeps one core busy
with single-threaded matrix products (what another job, a test suite or a browser does to a laptop).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "omp_wait.json"
WORKER = """
import os, sys, time, torch
from transformers import AutoModelForCausalLM
model = AutoModelForCausalLM.from_pretrained(sys.argv[1]).eval()
x = torch.randint(0, 1000, (64, 1))
with torch.no_grad():
    for _ in range(3):
        model(input_ids=x)
    began = time.perf_counter()
    for _ in range(int(sys.argv[2])):
        model(input_ids=x)
print((time.perf_counter() - began) / int(sys.argv[2]))
"""
BURNER = """
import torch, time
torch.set_num_threads(1)
a = torch.randn(512, 512)
while True:
    a = (a @ a).clamp_(-1, 1)
"""


POLICIES = {"spin (libgomp default)": {}, "PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"},
            "GOMP_SPINCOUNT=10000": {"GOMP_SPINCOUNT": "10000"}}


def forward_seconds(model_dir: str, forwards: int, policy: dict) -> float:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(policy)
    out = subprocess.run([sys.executable, "-c", WORKER, model_dir, str(forwards)], env=env, capture_output=True,
                         text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--forwards", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    from openrft.models import resolve_model

    model_dir = str(resolve_model("default").path)
    results = {}
    for load in ("idle", "contended"):
        burner = subprocess.Popen([sys.executable, "-c", BURNER]) if load == "contended" else None
        try:
            if burner:
                time.sleep(1)
            times = {name: [] for name in POLICIES}
            for _ in range(args.repeats):
                for name, policy in POLICIES.items():
                    times[name].append(forward_seconds(model_dir, args.forwards, policy))
        finally:
            if burner:
                burner.kill()
                burner.wait()
        results[load] = {name: {"median_s": statistics.median(v), "all_s": v} for name, v in times.items()}
        spin = results[load]["spin (libgomp default)"]["median_s"]
        print(f"{load:>9}: one decode step (64 rows): " + ", ".join(
            f"{name} {results[load][name]['median_s'] * 1000:.0f} ms ({spin / results[load][name]['median_s']:.2f}x)"
            for name in POLICIES), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"forwards": args.forwards, "repeats": args.repeats, "cpus": os.cpu_count(),
                                    "results": results}, indent=2))
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
