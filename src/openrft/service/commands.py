"""`openrft serve`: the OpenAI-compatible API (uvicorn) and its worker processes.

Start-up: migrate the store (Alembic), re-queue the work of dead workers (a job resumes from its last
checkpoint), start the workers (one per GPU, or one on CPU; `--workers` to change), then serve HTTP on
127.0.0.1 unless told otherwise. A supervisor thread restarts a worker that exits; stopping the server
stops its workers (a job they were running is re-queued by the next start).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import typer
from rich.console import Console

console = Console(stderr=True)
RESTART_BACKOFF_S = (1, 2, 5, 10, 30)


def gpu_count() -> int:
    """The CUDA devices of this machine (0 without GPUs or without a CUDA build of torch)."""
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:
        return 0


class WorkerPool:
    """The worker processes of this server, restarted when they exit, stopped with the server."""

    def __init__(self, count: int, database_url: str, *, gpus: int = 0):
        self.count = count
        self.database_url = database_url
        self.gpus = gpus
        self.processes: list[subprocess.Popen | None] = [None] * count
        self.restarts = [0] * count
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._supervise, daemon=True)

    def start(self) -> None:
        for index in range(self.count):
            self._spawn(index)
        self._thread.start()

    def _spawn(self, index: int) -> None:
        # The store's URL goes in the environment, not on the command line: it may hold a password.
        env = {**os.environ, "OPENRFT_DATABASE_URL": self.database_url}
        if self.gpus:
            env["CUDA_VISIBLE_DEVICES"] = str(index % self.gpus)
        process = subprocess.Popen(
            [sys.executable, "-m", "openrft.service.worker", "--parent-pid", str(os.getpid())], env=env,
            start_new_session=True)  # Ctrl-C reaches the server only; it stops the workers itself
        self.processes[index] = process
        console.print(f"[bold]openrft serve[/]: worker {index} started (pid {process.pid}"
                      + (f", GPU {index % self.gpus})" if self.gpus else ")"))

    def _supervise(self) -> None:
        while not self._stop.wait(1.0):
            for index, process in enumerate(self.processes):
                if process is None or process.poll() is None:
                    continue
                delay = RESTART_BACKOFF_S[min(self.restarts[index], len(RESTART_BACKOFF_S) - 1)]
                console.print(f"[yellow]openrft serve[/]: worker {index} exited with {process.returncode}; "
                              f"restarting in {delay} s")
                self.restarts[index] += 1
                if self._stop.wait(delay):
                    return
                self._spawn(index)

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        running = [p for p in self.processes if p is not None and p.poll() is None]
        for process in running:
            process.terminate()  # a running job stops at its next step boundary, its state saved
        deadline = time.monotonic() + timeout
        for process in running:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def serve(
    host: str = typer.Option("127.0.0.1", help="address to listen on (0.0.0.0 exposes the API to the network)"),
    port: int = typer.Option(8000, help="TCP port"),
    api_key: str = typer.Option(None, envvar="OPENRFT_API_KEY", show_default=False,
                                help="require 'Authorization: Bearer <key>' on every route"),
    workers: int = typer.Option(None, min=0, show_default=False,
                                help="worker processes (default: one per GPU, or 1); 0 serves the API only"),
    database_url: str = typer.Option(None, envvar="OPENRFT_DATABASE_URL", show_default=False,
                                     help="SQLAlchemy URL of the store (default: SQLite in $OPENRFT_HOME)"),
    log_level: str = typer.Option("info", help="uvicorn log level"),
    upstream: str = typer.Option(None, show_default=False,
                                 help="an OpenAI-compatible server (vLLM, llama.cpp: http://host:port/v1) that "
                                      "answers for the models openrft does not know, or for each --upstream-model"),
    upstream_key: str = typer.Option(None, envvar="OPENRFT_UPSTREAM_API_KEY", show_default=False,
                                     help="Bearer key for --upstream"),
    upstream_model: list[str] = typer.Option(None, show_default=False,
                                             help="a model name sent to --upstream (repeatable)"),
) -> None:
    """Serve the OpenAI-compatible fine-tuning, evals and chat API, with workers that run the jobs."""
    import uvicorn

    from openrft import paths
    from openrft.service.app import create_app
    from openrft.service.store import Store
    from openrft.service.worker import recover, setup_logging

    setup_logging()
    store = Store(database_url)
    store.migrate()
    for kind, row_id, status in recover(store):
        console.print(f"[yellow]openrft serve[/]: {kind} {row_id} was left by a dead worker: now {status}")
    gpus = gpu_count()
    if workers is None:
        workers = max(1, gpus)  # one worker per device: jobs on one device run one at a time
    pool = WorkerPool(workers, store.url, gpus=gpus)
    if upstream:  # before the app and the workers: both read the route from the environment
        from openrft.service.engine_cache import use_upstream

        use_upstream(upstream, upstream_key, upstream_model)
        routed = ", ".join(upstream_model) if upstream_model else "the models openrft does not know"
        console.print(f"[bold]openrft serve[/]: {routed} answered by {upstream} (chat, playground, eval runs)")
    app = create_app(store, api_key=api_key, migrate=False)
    console.print(f"[bold]openrft serve[/]: data in {paths.home()}, store {store.engine.url.render_as_string()}, "
                  f"{workers} worker(s), auth {'on' if api_key else 'off'}, http://{host}:{port}/v1")
    pool.start()
    try:
        uvicorn.run(app, host=host, port=port, log_level=log_level)
    finally:
        pool.stop()

