"""The worker process: claims queued jobs and eval runs from the store and runs them, one at a time.

`openrft serve` starts one per device (`python -m openrft.service.worker`, with `CUDA_VISIBLE_DEVICES`
set to its device when there are GPUs). A worker:

1. claims the oldest queued job or eval run with the store's compare-and-set update (never twice);
2. writes a heartbeat every few seconds from a side thread while it runs it, and exits at once if the
   server that started it is gone (the row stays `running` and is re-queued, see below);
3. runs a job with `openrft.training.run_job(run_dir, should_stop=...)`, where `should_stop` reads the
   action the API asked for (cancel / pause) from the store at each step boundary, and an eval run with
   `openrft.service.evals.execute_run`;
4. records the final status and looks for the next one.

Recovery: whenever the queue is empty (and when the server starts), rows held by dead workers (a dead
pid on this host, or a silent heartbeat) go back to the queue; `run_job` then resumes the job from its
last checkpoint state (`state/` in the run directory).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
import time
import traceback
from pathlib import Path
from typing import Callable

from openrft.service.store import Store, WorkerId, eval_runs, jobs

log = logging.getLogger("openrft.worker")

ShouldStop = Callable[[], "str | None"]
Handler = Callable[[Store, str, ShouldStop], str]  # (store, row id, should_stop) -> final status

HEARTBEAT_S = 5.0
POLL_S = 1.0
RECOVER_EVERY_S = 10.0


def run_training_job(store: Store, job_id: str, should_stop: ShouldStop) -> str:
    """Run (or resume) a fine-tuning job in this process; returns its status when it stops.

    "queued" means the job was interrupted (SIGTERM / Ctrl-C) at a step boundary with its state saved.
    """
    from openrft.dashboard import report_finished_job
    from openrft.graders.sandbox import sandbox_caller
    from openrft.runs import load_job
    from openrft.service.jobs import set_status
    from openrft.training import run_job

    job_row = store.get(jobs, job_id)
    assert job_row is not None  # the worker runs the rows it claimed
    run_dir = Path(job_row["run_dir"])
    try:
        with sandbox_caller(f"job:{job_id}"):  # the job's python grades share one caller's share of the pool
            job = run_job(run_dir, should_stop=should_stop, progress=False)
        report_finished_job(run_dir, job["status"])
    except Exception as exc:  # run_job marks the job failed before it re-raises; record it if it could not
        log.exception("job %s crashed", job_id)
        if load_job(run_dir).status != "failed":
            set_status(run_dir, "failed", f"Fine-tuning job failed: {type(exc).__name__}: {exc}", level="error")
        return "failed"
    return job["status"]


def run_eval_run(store: Store, run_id: str, should_stop: ShouldStop) -> str:
    from openrft.graders.sandbox import sandbox_caller
    from openrft.service.evals import execute_run

    with sandbox_caller(f"eval_run:{run_id}"):  # the run's python grades share one caller's share of the pool
        return execute_run(store, run_id, should_stop)


DEFAULT_HANDLERS: dict[str, Handler] = {"job": run_training_job, "eval_run": run_eval_run}


def recover(store: Store, *, stale_after: float | None = None) -> list[tuple[str, str, str]]:
    """Re-queue the jobs and eval runs of dead workers, noting it in each job's run directory.

    A job whose run directory already records its end (the worker died between writing it and telling the
    store) keeps that end instead.
    """
    from openrft.runs import is_job_dir, load_job
    from openrft.service.jobs import TERMINAL, set_status

    kwargs = {} if stale_after is None else {"stale_after": stale_after}
    found = []
    for kind, row_id, status in store.requeue_dead(**kwargs):
        if kind == "job":
            job_row = store.get(jobs, row_id)
            assert job_row is not None  # requeue_dead has just updated it
            run_dir = Path(job_row["run_dir"])
            recorded = load_job(run_dir).status if is_job_dir(run_dir) else None
            if recorded in TERMINAL:
                store.update(jobs, row_id, status=recorded, queue_order=None)
                status = recorded
            elif recorded is not None:
                message = {"queued": "Worker lost: the job is queued again and resumes from its last checkpoint",
                           "cancelled": "Fine-tuning job cancelled (its worker was lost)",
                           "paused": "Fine-tuning job paused (its worker was lost)"}[status]
                set_status(run_dir, status, message, level="warn")
        log.warning("%s %s was held by a dead worker: now %s", kind, row_id, status)
        found.append((kind, row_id, status))
    return found


class Worker:
    """Claims and runs queued work; `handlers` maps a kind ("job", "eval_run") to the function that runs it."""

    def __init__(self, store: Store, *, handlers: dict[str, Handler] | None = None, poll_s: float = POLL_S,
                 heartbeat_s: float = HEARTBEAT_S, parent_pid: int | None = None):
        self.store = store
        self.handlers = handlers or DEFAULT_HANDLERS
        self.poll_s = poll_s
        self.heartbeat_s = heartbeat_s
        self.parent_pid = parent_pid
        self.id = WorkerId.this_process()
        self._last_recover = 0.0
        self.stopping = threading.Event()

    def run_once(self) -> tuple[str, str, str] | None:
        """Claim one queued row and run it; (kind, id, final status), or None when the queue is empty."""
        claimed = self.store.claim(self.id, tuple(self.handlers))
        if claimed is None:
            return None
        kind, row_id = claimed
        log.info("worker %s runs %s %s", self.id.pid, kind, row_id)
        done = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(kind, row_id, done), daemon=True)
        beat.start()
        try:
            status = self.handlers[kind](self.store, row_id, lambda: self.store.requested_action(kind, row_id))
        except Exception as exc:
            log.exception("%s %s failed", kind, row_id)
            status = "failed"
            if kind == "eval_run":
                self.store.update(eval_runs, row_id, error={"code": "worker_error",
                                                            "message": f"{type(exc).__name__}: {exc}",
                                                            "traceback": traceback.format_exc(limit=5)})
        finally:
            done.set()
            beat.join()
        if status == "queued":  # interrupted by a signal: back to its place in the queue, and this worker stops
            self.store.requeue(kind, row_id, self.id)
            self.stopping.set()
        elif not self.store.release(kind, row_id, status, self.id):
            log.warning("%s %s was re-queued while this worker ran it: its result (%s) is dropped", kind, row_id,
                        status)
        log.info("worker %s finished %s %s: %s", self.id.pid, kind, row_id, status)
        return kind, row_id, status

    def run_forever(self) -> None:
        """Claim and run work until SIGTERM / SIGINT (a running job stops at its next step boundary)."""
        while not self.stopping.is_set():
            # The training loop installs its own handlers while it runs (stop at a step boundary); between
            # jobs, a signal only stops this loop.
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: self.stopping.set())
            self._check_parent()
            if self.run_once() is None:
                if time.monotonic() - self._last_recover > RECOVER_EVERY_S:
                    recover(self.store)
                    self._last_recover = time.monotonic()
                self.stopping.wait(self.poll_s)

    def _heartbeat(self, kind: str, row_id: str, done: threading.Event) -> None:
        while not done.wait(self.heartbeat_s):
            self._check_parent()
            if not self.store.heartbeat(kind, row_id, self.id):
                log.warning("%s %s is no longer held by this worker", kind, row_id)

    def _check_parent(self) -> None:
        """Exit at once when the server that started this worker died: the next server re-queues the work."""
        if self.parent_pid is not None and os.getppid() != self.parent_pid:
            log.error("the server (pid %s) is gone: worker %s exits", self.parent_pid, self.id.pid)
            os._exit(3)


def setup_logging() -> None:
    """INFO for openrft's own loggers; Alembic only when something is wrong."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s[%(process)d] %(levelname)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m openrft.service.worker", description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=None,
                        help="SQLAlchemy URL of the store (default: $OPENRFT_DATABASE_URL, else the data dir's)")
    parser.add_argument("--poll", type=float, default=POLL_S, help="seconds between looks at an empty queue")
    parser.add_argument("--parent-pid", type=int, default=None, help="exit when this process (the server) dies")
    args = parser.parse_args(argv)
    setup_logging()
    store = Store(args.database_url)
    store.migrate()
    Worker(store, poll_s=args.poll, parent_pid=args.parent_pid).run_forever()


if __name__ == "__main__":
    main()
