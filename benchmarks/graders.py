"""Grader speed: the sandbox pool against one fresh subprocess per grade, and in-process graders.

    python benchmarks/graders.py              # 2,000 pairs; writes benchmarks/results/graders.json
    python benchmarks/graders.py --pairs 200  # a quick run
    python benchmarks/graders.py --ab --pairs 1000 --rounds 5 --baseline-rev 1848177
                                              # pools side by side: writes benchmarks/results/graders_ab.json

`--ab` times the two python graders through pools side by side, in interleaved rounds (A, B, C, A, B,
C, ...) so that a change of the machine's load hits all of them: the pool as it is (a process per batch),
the same pool with `batch_grades=1` (a process per grade), and, with `--baseline-rev`, the pool of that git
revision (1848177: the warm worker ran user code itself, before issue 20). It reports pairs/s per round,
the median, each pool's speed relative to the batched pool, the CPU time a pair costs (every process of the
pool's sandboxes plus the benchmark's own process, from /proc: less sensitive to the machine's load than
pairs/s) and the load average around each run.

Python graders (a trivial one and the ready-made multilabel_f1, a multi grader of three python
graders) grade the same (sample, item) pairs three ways, each with as many graders in flight as the
pool has workers:

- `pool`: openrft's warm sandboxed workers (src/openrft/graders/sandbox.py);
- `subprocess`: a fresh `python -I` process per python grade, unsandboxed (the cheapest baseline);
- `bwrap_subprocess`: a fresh process per grade under the same bubblewrap sandbox as the pool.

Latency p50/p99 is the time of one python grade inside `grade_many` (request to answer, under load)
and of one `grade()` call on an idle pool. In-process graders (string_check, text_similarity) are
timed on one core over the same pairs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from openrft.graders import build_grader, ready_grader
from openrft.graders import sandbox as sandbox_module
from openrft.graders.sandbox import (
    SandboxLimits,
    SandboxPool,
    SandboxResult,
    bwrap_path,
    release_uid,
    sandbox_command,
    take_uid,
)

RESULTS = Path(__file__).resolve().parent / "results" / "graders.json"
TRIVIAL = {"type": "python", "name": "trivial", "source": "def grade(sample, item):\n    return 1.0\n"}
RUNNER = """import json, math, sys
request = json.loads(sys.stdin.read())
namespace = {"__name__": "grader"}
exec(compile(request["source"], "grader", "exec"), namespace)
value = namespace["grade"](request["sample"], request["item"])
print(json.dumps({"reward": float(value)}))
"""
console = Console(stderr=True)


class SubprocessPerGrade:
    """The baseline: what PythonGrader would do without a pool, one fresh process per grade."""

    def __init__(self, workers: int, sandboxed: bool, limits: SandboxLimits):
        self.size, self.sandboxed, self.limits = workers, sandboxed, limits

    def command(self, uid: int) -> list[str]:
        python = [sys.executable, "-I", "-c", RUNNER]
        if not self.sandboxed:
            return python
        # the pool's bwrap command around RUNNER (which skips the worker's uid drop and limits: a bit cheaper)
        return sandbox_command(self.limits, uid)[:-4] + python

    def run_many(self, source: str, pairs: list) -> list[SandboxResult]:
        results: list[SandboxResult | None] = [None] * len(pairs)
        position = iter(range(len(pairs)))
        lock = threading.Lock()
        as_root = os.geteuid() == 0

        def drain() -> None:
            uid = take_uid() if as_root else 0
            command = self.command(uid)
            try:
                while True:
                    with lock:
                        index = next(position, None)
                    if index is None:
                        return
                    results[index] = self.one(command, source, *pairs[index])
            finally:
                if as_root:
                    release_uid(uid)

        threads = [threading.Thread(target=drain) for _ in range(self.size)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return results  # type: ignore[return-value]

    @staticmethod
    def one(command: list[str], source: str, sample: dict, item: dict) -> SandboxResult:
        started = time.perf_counter()
        done = subprocess.run(command, input=json.dumps({"source": source, "sample": sample, "item": item}),
                              capture_output=True, text=True, env={}, timeout=60)
        seconds = time.perf_counter() - started
        if done.returncode == 0:
            return SandboxResult(reward=json.loads(done.stdout)["reward"], seconds=seconds)
        return SandboxResult(error="runtime", details=done.stderr[-300:], seconds=seconds)


def make_pairs(count: int, seed: int = 0) -> list[tuple[dict, dict]]:
    """EuroVoc-like (sample, item) pairs: 1-6 labels out of 60, a document of ~2 kB in the item."""
    rng = random.Random(seed)
    labels = [f"descriptor {index}" for index in range(60)]
    pairs = []
    for _ in range(count):
        reference = rng.sample(labels, rng.randint(1, 6))
        predicted = rng.sample(reference, rng.randint(0, len(reference))) + rng.sample(labels, rng.randint(0, 3))
        output = {"labels": predicted}
        sample = {"output_text": json.dumps(output), "output_json": output, "output_tools": [],
                  "choices": [{"index": 0, "finish_reason": "stop",
                               "message": {"role": "assistant", "content": json.dumps(output)}}]}
        item = {"messages": [{"role": "user", "content": "Label this document. " + "lorem ipsum " * 170}],
                "labels": reference, "reference": ", ".join(reference)}
        pairs.append((sample, item))
    return pairs


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def time_grader(grader, pairs) -> dict:
    started = time.perf_counter()
    grades = grader.grade_many(pairs)
    elapsed = time.perf_counter() - started
    errors = sum(1 for grade in grades if grade.error_kind)
    return {"pairs": len(pairs), "seconds": round(elapsed, 3), "pairs_per_s": round(len(pairs) / elapsed, 1),
            "errors": errors, "_grades": grades}


def python_latencies(grades) -> list[float]:
    """Per python grade: a multi grade's execution_time sums its python sub-grades."""
    return [grade.execution_time for grade in grades]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=None, help="pool size (default: the pool's own)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--ab", action="store_true", help="only the side-by-side pool comparison (see above)")
    parser.add_argument("--rounds", type=int, default=5, help="--ab: interleaved rounds")
    parser.add_argument("--baseline-rev", default=None, help="--ab: also the pool of this git revision")
    args = parser.parse_args()
    if args.ab:
        side_by_side(args)
        return
    args.out = args.out or RESULTS

    limits = SandboxLimits()
    pairs = make_pairs(args.pairs)
    results: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                 "platform": platform.platform(), "bwrap": bwrap_path(),
                                 "load_average_at_start": [round(value, 2) for value in os.getloadavg()]},
                     "pairs": args.pairs}
    with SandboxPool(workers=args.workers, limits=limits) as pool:
        pool.start()
        results["pool_workers"] = pool.size
        graders = {"trivial": TRIVIAL, "multilabel_f1": ready_grader("multilabel_f1")}
        ways = {"pool": pool, "subprocess": SubprocessPerGrade(pool.size, False, limits),
                "bwrap_subprocess": SubprocessPerGrade(pool.size, True, limits)}
        python_results: dict = {}
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("python graders", total=len(graders) * len(ways))
            for grader_name, spec in graders.items():
                for way_name, backend in ways.items():
                    grader = build_grader(spec, sandbox=backend)
                    if way_name == "pool":
                        grader.grade_many(pairs[: pool.size * 2])  # load the source into every worker
                    progress.update(task, description=f"{grader_name} via {way_name}")
                    timing = time_grader(grader, pairs)
                    latencies = python_latencies(timing.pop("_grades"))
                    timing["latency_ms_p50"] = round(1000 * percentile(latencies, 0.50), 3)
                    timing["latency_ms_p99"] = round(1000 * percentile(latencies, 0.99), 3)
                    python_results.setdefault(grader_name, {})[way_name] = timing
                    progress.advance(task)
            for ways_timing in python_results.values():
                pool_rate = ways_timing["pool"]["pairs_per_s"]
                ways_timing["speedup_vs_subprocess"] = round(pool_rate / ways_timing["subprocess"]["pairs_per_s"], 1)
                ways_timing["speedup_vs_bwrap_subprocess"] = round(
                    pool_rate / ways_timing["bwrap_subprocess"]["pairs_per_s"], 1)
            # one grade() at a time on an idle pool: the latency a single caller sees
            single = build_grader(TRIVIAL, sandbox=pool)
            latencies = []
            for sample, item in pairs[:500]:
                started = time.perf_counter()
                single.grade(sample, item)
                latencies.append(time.perf_counter() - started)
            python_results["trivial"]["pool_single_call_latency_ms"] = {
                "p50": round(1000 * percentile(latencies, 0.5), 3), "p99": round(1000 * percentile(latencies, 0.99), 3)}
    results["python"] = python_results

    in_process = {}
    specs = {"string_check": {"type": "string_check", "input": "{{ sample.output_text }}",
                              "reference": "{{ item.reference }}", "operation": "ilike"}}
    for metric in ("fuzzy_match", "rouge_1", "rouge_l", "gleu", "bleu", "meteor", "cosine"):
        specs[f"text_similarity/{metric}"] = {"type": "text_similarity", "input": "{{ sample.output_text }}",
                                              "reference": "{{ item.reference }}", "evaluation_metric": metric}
    for name, spec in specs.items():
        grader = build_grader(spec)
        grader.grade_many(pairs[:8])  # imports, model loading
        # cosine runs a 22M-parameter encoder on the CPU: 200 pairs are plenty to time it; meteor looks every
        # word up in WordNet: the 2,000 pairs once
        many = (pairs[:200] if name.endswith("cosine") else pairs if name.endswith("meteor")
                else pairs * max(1, 10_000 // len(pairs)))
        timing = time_grader(grader, many)
        timing.pop("_grades")
        in_process[name] = {"grades_per_s": round(timing["pairs_per_s"]), "grades": timing["pairs"]}
    results["in_process"] = in_process

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    report(results)
    console.print(f"written to {args.out}")


def pool_of_revision(rev: str, folder: Path):
    """The SandboxPool class of git revision `rev` (its sandbox.py and sandbox_worker.py, standard library only)."""
    import importlib.util

    package = folder / f"sandbox_{rev}"
    package.mkdir(parents=True, exist_ok=True)
    root = Path(__file__).resolve().parent.parent
    for name in ("sandbox.py", "sandbox_worker.py"):
        text = subprocess.run(["git", "-C", str(root), "show", f"{rev}:src/openrft/graders/{name}"], check=True,
                              capture_output=True, text=True).stdout
        (package / name).write_text(text)
    spec = importlib.util.spec_from_file_location(f"sandbox_{rev}", package / "sandbox.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module.SandboxPool, module.SandboxLimits


def sandbox_cpu_seconds(pool) -> float:
    """CPU time used so far by a pool's sandboxes: every process under each worker's bwrap (the worker, and
    through its reaped children's times, every grade or batch process it ran)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    stack = [worker.proc.pid for worker in list(getattr(pool, "_all", ()))]
    while stack:
        pid = stack.pop()
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(value) for value in fields[11:15])  # utime, stime, cutime, cstime
            for task in os.listdir(f"/proc/{pid}/task"):
                stack += [int(child) for child in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
        except (OSError, ValueError):
            continue
    return total / tick


def side_by_side(args) -> None:
    """Pools timed in interleaved rounds on the same pairs (see the module's docstring)."""
    import statistics
    import tempfile

    out = args.out or RESULTS.with_name("graders_ab.json")
    workers = args.workers or 3
    batched = f"batch of up to {sandbox_module.BATCH_GRADES} grades"
    pools = {batched: SandboxPool(workers=workers, limits=SandboxLimits()),
             "a process per grade": SandboxPool(workers=workers, limits=SandboxLimits(), batch_grades=1)}
    graders = {"trivial": TRIVIAL, "multilabel_f1": ready_grader("multilabel_f1")}
    pairs = make_pairs(args.pairs)
    runs: dict[str, dict[str, list[dict]]] = {grader: {} for grader in graders}
    with tempfile.TemporaryDirectory() as folder:
        if args.baseline_rev:
            OldPool, OldLimits = pool_of_revision(args.baseline_rev, Path(folder))
            pools[f"{args.baseline_rev}: user code in the warm worker"] = OldPool(workers=workers, limits=OldLimits())
        try:
            for pool in pools.values():
                pool.start()
            for grader_name, spec in graders.items():
                built = {name: build_grader(spec, sandbox=pool) for name, pool in pools.items()}
                for grader in built.values():
                    grader.grade_many(pairs[: workers * 4])  # the sources in the workers
                for round_number in range(args.rounds):
                    for name, grader in built.items():
                        load_before = os.getloadavg()[0]
                        sandbox_cpu, own_cpu = sandbox_cpu_seconds(pools[name]), sum(os.times()[:2])
                        started = time.perf_counter()
                        grades = grader.grade_many(pairs)
                        seconds = time.perf_counter() - started
                        cpu_us = 1e6 * (sandbox_cpu_seconds(pools[name]) - sandbox_cpu + sum(os.times()[:2]) - own_cpu)
                        errors = sum(1 for grade in grades if grade.error_kind)
                        runs[grader_name].setdefault(name, []).append({
                            "round": round_number, "pairs_per_s": round(len(pairs) / seconds, 1), "errors": errors,
                            "cpu_us_per_pair": round(cpu_us / len(pairs)),  # sandboxes + this process (10 ms ticks)
                            "load_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)]})
                        console.print(f"{grader_name} round {round_number} {name}: {len(pairs) / seconds:,.0f} "
                                      f"pairs/s, {cpu_us / len(pairs):,.0f} µs CPU a pair ({errors} errors), "
                                      f"load {load_before:.2f}")
        finally:
            for pool in pools.values():
                pool.close()
    medians = {grader: {name: statistics.median(run["pairs_per_s"] for run in values)
                        for name, values in by_pool.items()} for grader, by_pool in runs.items()}
    cpu = {grader: {name: statistics.median(run["cpu_us_per_pair"] for run in values)
                    for name, values in by_pool.items()} for grader, by_pool in runs.items()}
    results = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                           "load_average_at_end": [round(value, 2) for value in os.getloadavg()]},
               "pairs": args.pairs, "rounds": args.rounds, "workers": workers,
               "batch_grades": sandbox_module.BATCH_GRADES,
               "batch_seconds": sandbox_module.BATCH_SECONDS, "runs": runs, "median_pairs_per_s": medians,
               "median_cpu_us_per_pair": cpu,
               "median_speed_relative_to_batch": {grader: {name: round(value / by_pool[batched], 2)
                                                           for name, value in by_pool.items()}
                                                  for grader, by_pool in medians.items()}}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    table = Table("grader", "pool", "pairs/s per round", "median", "speed vs batch", "CPU µs a pair (median)",
                  title=f"{args.pairs} pairs per run, {workers} workers (one caller uses {workers - 1}), "
                        "rounds interleaved")
    for grader, by_pool in runs.items():
        for name, values in by_pool.items():
            table.add_row(grader, name, ", ".join(f"{run['pairs_per_s']:,.0f}" for run in values),
                          f"{medians[grader][name]:,.0f}", f"×{medians[grader][name] / medians[grader][batched]:.2f}",
                          f"{cpu[grader][name]:,.0f}")
    Console().print(table)
    console.print(f"written to {out}")


def report(results: dict) -> None:
    table = Table("python grader", "way", "pairs/s", "p50 ms", "p99 ms", "errors", title=f"{results['pairs']} pairs, "
                  f"{results['pool_workers']} workers, {results['machine']['cpus']} CPUs")
    for grader_name, ways in results["python"].items():
        for way, timing in ways.items():
            if isinstance(timing, dict) and "pairs_per_s" in timing:
                table.add_row(grader_name, way, f"{timing['pairs_per_s']:,.0f}", str(timing["latency_ms_p50"]),
                              str(timing["latency_ms_p99"]), str(timing["errors"]))
        table.add_row(grader_name, "pool speed-up", f"×{ways['speedup_vs_subprocess']} vs subprocess, "
                      f"×{ways['speedup_vs_bwrap_subprocess']} vs bwrap subprocess", "", "", "")
    Console().print(table)
    table = Table("in-process grader", "grades/s")
    for name, timing in results["in_process"].items():
        table.add_row(name, f"{timing['grades_per_s']:,}")
    Console().print(table)


if __name__ == "__main__":
    main()
