"""Load test: N concurrent clients against `openrft serve` on loopback for a bounded time.

Each client loops over the API's everyday requests (upload a fine-tuning file, create a job from it, run a
string_check grader, optionally a python grader in the sandbox, list files, list jobs) and times each one.
Afterwards the store is counted: every upload and job that got a 200 must be listed (no lost records) and
every listed file must exist on disk in the server's data directory. The server runs with `--workers 0`
(API only) so that created jobs stay queued and the figures measure the API and the store, not training.

    python benchmarks/load.py --clients 8 --seconds 30            # writes benchmarks/results/load.json
    python benchmarks/load.py --clients 16 --seconds 60 --python-grader
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

KEY = "sk-load-test"
HEADERS = {"Authorization": f"Bearer {KEY}"}
ROW = {"messages": [{"role": "user", "content": "Is the sky blue? Answer yes or no."}], "answer": "yes"}
STRING_CHECK = {"type": "string_check", "name": "yes", "input": "{{ sample.output_text }}",
                "reference": "{{ item.answer }}", "operation": "eq"}
PYTHON = {"type": "python", "name": "len",
          "source": "def grade(sample, item):\n    return min(1.0, len(sample['output_text']) / 10)\n"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(home: Path, port: int) -> subprocess.Popen:
    """`python -m openrft serve --workers 0` with its own data directory; waits until it answers."""
    env = {**os.environ, "OPENRFT_HOME": str(home), "OPENRFT_API_KEY": KEY}
    env.pop("OPENRFT_DATABASE_URL", None)
    log = open(home / "serve.log", "wb")
    process = subprocess.Popen([sys.executable, "-m", "openrft", "serve", "--port", str(port), "--workers", "0",
                                "--log-level", "warning"], env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/files", headers=HEADERS, timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            break
        time.sleep(0.3)
    stop_server(process)
    raise SystemExit(f"openrft serve did not start:\n{(home / 'serve.log').read_text()[-3000:]}")


def stop_server(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


class Client(threading.Thread):
    """One client: its own connection, looping over the operations until the deadline."""

    def __init__(self, index: int, base_url: str, deadline: float, python_grader: bool, results):
        super().__init__(daemon=True)
        self.index, self.deadline, self.results = index, deadline, results
        self.http = httpx.Client(base_url=base_url, headers=HEADERS, timeout=120)
        self.operations = (["upload", "create_job", "grade", "list_files", "list_jobs"]
                           + ["python_grade"] * python_grader)
        self.file_ids: list[str] = []
        self.job_ids: list[str] = []

    def request(self, name: str, method: str, url: str, **kwargs):
        started = time.perf_counter()
        try:
            response = self.http.request(method, url, **kwargs)
            ok = response.status_code == 200
            detail = None if ok else f"{response.status_code} {response.text[:200]}"
        except httpx.HTTPError as exc:
            response, ok, detail = None, False, f"{type(exc).__name__}: {exc}"
        self.results.record(name, time.perf_counter() - started, detail)
        return response if ok else None

    def run(self) -> None:
        step = 0
        while time.monotonic() < self.deadline:
            name = self.operations[step % len(self.operations)]
            step += 1
            if name == "upload":
                row = {**ROW, "answer": f"yes-{self.index}-{step}"}  # distinct rows, distinct files
                content = (json.dumps(row) + "\n" + json.dumps({**row, "messages": [
                    {"role": "user", "content": f"Row two of {self.index}/{step}"}]}) + "\n").encode()
                made = self.request(name, "POST", "/files", files={"file": (f"c{self.index}-{step}.jsonl", content)},
                                    data={"purpose": "fine-tune"})
                if made is not None:
                    self.file_ids.append(made.json()["id"])
            elif name == "create_job" and self.file_ids:
                body = {"model": "default", "training_file": self.file_ids[-1], "suffix": f"load{self.index}",
                        "method": {"type": "reinforcement", "reinforcement": {"grader": STRING_CHECK}}}
                made = self.request(name, "POST", "/fine_tuning/jobs", json=body)
                if made is not None:
                    self.job_ids.append(made.json()["id"])
            elif name in ("grade", "python_grade"):
                grader = STRING_CHECK if name == "grade" else PYTHON
                self.request(name, "POST", "/fine_tuning/alpha/graders/run",
                             json={"grader": grader, "model_sample": "yes", "item": {"answer": "yes"}})
            elif name == "list_files":
                self.request(name, "GET", "/files", params={"limit": 100})
            elif name == "list_jobs":
                self.request(name, "GET", "/fine_tuning/jobs", params={"limit": 20})


class Results:
    def __init__(self):
        self.lock = threading.Lock()
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, list[str]] = defaultdict(list)

    def record(self, name: str, seconds: float, error: str | None) -> None:
        with self.lock:
            self.latencies[name].append(seconds)
            if error:
                self.errors[name].append(error)

    def done(self) -> int:
        with self.lock:
            return sum(len(v) for v in self.latencies.values())


def percentile(values: list[float], q: float) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def list_all(http: httpx.Client, url: str, limit: int) -> list[dict]:
    """Every object of a paginated list."""
    found, after = [], None
    while True:
        page = http.get(url, params={"limit": limit, **({"after": after} if after else {})}).json()
        found += page["data"]
        if not page.get("has_more"):
            return found
        after = page["data"][-1]["id"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--python-grader", action="store_true", help="also run a python grader (sandbox) per loop")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "load.json"))
    args = parser.parse_args()
    console = Console()

    home = Path(tempfile.mkdtemp(prefix="openrft-load-"))
    port = free_port()
    console.print(f"starting openrft serve on 127.0.0.1:{port} (data directory {home})")
    server = start_server(home, port)
    results = Results()
    try:
        deadline = time.monotonic() + args.seconds
        clients = [Client(i, f"http://127.0.0.1:{port}/v1", deadline, args.python_grader, results)
                   for i in range(args.clients)]
        started = time.perf_counter()
        with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[done]} requests"),
                      TimeRemainingColumn(), console=console) as progress:
            task = progress.add_task(f"{args.clients} clients", total=args.seconds, done=0)
            for client in clients:
                client.start()
            while any(client.is_alive() for client in clients):
                time.sleep(0.5)
                progress.update(task, completed=min(args.seconds, time.perf_counter() - started), done=results.done())
        elapsed = time.perf_counter() - started

        # No lost records: every acknowledged upload and job is listed, and every listed file is on disk.
        http = httpx.Client(base_url=f"http://127.0.0.1:{port}/v1", headers=HEADERS, timeout=120)
        files = {f["id"] for f in list_all(http, "/files", 10_000)}
        jobs = {j["id"] for j in list_all(http, "/fine_tuning/jobs", 100)}
        on_disk = {p.name for p in (home / "files").iterdir() if not p.name.endswith(".partial")}
        acknowledged_files = {f for c in clients for f in c.file_ids}
        acknowledged_jobs = {j for c in clients for j in c.job_ids}
        integrity = {"files_acknowledged": len(acknowledged_files), "files_listed": len(files),
                     "files_on_disk": len(on_disk), "files_lost": len(acknowledged_files - files),
                     "files_listed_without_bytes": len(files - on_disk), "jobs_acknowledged": len(acknowledged_jobs),
                     "jobs_listed": len(jobs), "jobs_lost": len(acknowledged_jobs - jobs)}
    finally:
        stop_server(server)

    total = sum(len(v) for v in results.latencies.values())
    everything = [s for v in results.latencies.values() for s in v]
    report = {
        "clients": args.clients, "seconds": round(elapsed, 1), "requests": total,
        "throughput_rps": round(total / elapsed, 1),
        "p50_ms": round(percentile(everything, 50) * 1000, 1), "p99_ms": round(percentile(everything, 99) * 1000, 1),
        "errors": sum(len(v) for v in results.errors.values()),
        "operations": {name: {"requests": len(v), "p50_ms": round(percentile(v, 50) * 1000, 1),
                              "p99_ms": round(percentile(v, 99) * 1000, 1), "errors": len(results.errors[name]),
                              "first_error": (results.errors[name] or [None])[0]}
                       for name, v in sorted(results.latencies.items())},
        "integrity": integrity, "cpus": os.cpu_count(),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")

    table = Table("operation", "requests", "p50 ms", "p99 ms", "errors")
    for name, row in report["operations"].items():
        table.add_row(name, str(row["requests"]), str(row["p50_ms"]), str(row["p99_ms"]), str(row["errors"]))
    table.add_row("all", str(total), str(report["p50_ms"]), str(report["p99_ms"]), str(report["errors"]))
    console.print(table)
    console.print(f"{report['throughput_rps']} requests/s over {report['seconds']} s; integrity: {integrity}")
    console.print(f"wrote {args.out}")
    lost = integrity["files_lost"] + integrity["jobs_lost"] + integrity["files_listed_without_bytes"]
    sys.exit(1 if report["errors"] or lost else 0)


if __name__ == "__main__":
    main()
