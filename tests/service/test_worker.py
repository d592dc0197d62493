"""The worker loop with handlers passed in: claim, heartbeat, should_stop from the store, release, re-queue."""

from __future__ import annotations

import threading
import time

import pytest

from openrft.service.store import Store, WorkerId, eval_runs, evals
from openrft.service.worker import Worker


@pytest.fixture()
def store(tmp_path) -> Store:
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    store.migrate()
    store.insert(evals, id="eval_1", object={})
    return store


def queue_run(store: Store, run_id: str) -> None:
    store.insert(eval_runs, id=run_id, eval_id="eval_1", run_dir="/x", request={}, status="queued",
                 queue_order=time.time_ns(), attempts=0)


def test_worker_runs_each_queued_row_once_in_order(store):
    seen = []

    def handler(store_, row_id, should_stop):
        seen.append((row_id, store_.get(eval_runs, row_id)["status"], should_stop()))
        return "completed"

    for name in ("evalrun_a", "evalrun_b"):
        queue_run(store, name)
    worker = Worker(store, handlers={"eval_run": handler})
    assert worker.run_once() == ("eval_run", "evalrun_a", "completed")
    assert worker.run_once() == ("eval_run", "evalrun_b", "completed")
    assert worker.run_once() is None
    assert seen == [("evalrun_a", "in_progress", None), ("evalrun_b", "in_progress", None)]
    row = store.get(eval_runs, "evalrun_a")
    assert (row["status"], row["worker_pid"], row["heartbeat_at"]) == ("completed", None, None)


def test_should_stop_reads_the_requested_action_and_heartbeats_run(store):
    queue_run(store, "evalrun_long")
    beats = []

    def handler(store_, row_id, should_stop):
        # Ask for a cancel from "the API" (another thread), then poll like a training loop at step boundaries.
        threading.Timer(0.3, lambda: store_.update(eval_runs, row_id, requested_action="cancel")).start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            beats.append(store_.get(eval_runs, row_id)["heartbeat_at"])
            if should_stop() == "cancel":
                return "canceled"
            time.sleep(0.1)
        return "completed"

    worker = Worker(store, handlers={"eval_run": handler}, heartbeat_s=0.1)
    assert worker.run_once() == ("eval_run", "evalrun_long", "canceled")
    assert len(set(beats)) > 1  # the heartbeat moved while the handler ran


def test_a_crashing_handler_fails_the_row_and_the_worker_goes_on(store):
    queue_run(store, "evalrun_bad")
    queue_run(store, "evalrun_good")

    def handler(store_, row_id, should_stop):
        if row_id == "evalrun_bad":
            raise RuntimeError("boom")
        return "completed"

    worker = Worker(store, handlers={"eval_run": handler})
    assert worker.run_once() == ("eval_run", "evalrun_bad", "failed")
    assert "boom" in store.get(eval_runs, "evalrun_bad")["error"]["message"]
    assert worker.run_once() == ("eval_run", "evalrun_good", "completed")


def test_an_interrupted_row_goes_back_to_its_place_and_the_worker_stops(store):
    queue_run(store, "evalrun_first")
    order = store.get(eval_runs, "evalrun_first")["queue_order"]
    worker = Worker(store, handlers={"eval_run": lambda *_: "queued"})
    worker.run_once()
    row = store.get(eval_runs, "evalrun_first")
    assert (row["status"], row["queue_order"], row["worker_pid"]) == ("queued", order, None)
    assert worker.stopping.is_set()
    # another worker takes it up again
    assert store.claim(WorkerId("elsewhere", 1)) == ("eval_run", "evalrun_first")


def test_a_worker_exits_when_its_server_dies(store, tmp_path):
    """The worker polls its parent: when `openrft serve` is gone, its workers do not linger (the next server
    re-queues what they held)."""
    import os
    import subprocess
    import sys

    from openrft.service.store import pid_alive

    launcher = (
        "import os, subprocess, sys, time\n"
        "p = subprocess.Popen([sys.executable, '-m', 'openrft.service.worker', '--parent-pid', str(os.getpid()),\n"
        f"                      '--database-url', {store.url!r}, '--poll', '0.2'])\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(3)\n"
    )
    server = subprocess.Popen([sys.executable, "-c", launcher], stdout=subprocess.PIPE, text=True,
                              env={**os.environ})
    worker_pid = int(server.stdout.readline())
    server.wait()
    deadline = time.monotonic() + 30
    while pid_alive(worker_pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not pid_alive(worker_pid)
