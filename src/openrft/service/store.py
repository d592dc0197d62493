"""The service's store: an SQLAlchemy index of files, jobs, evals and eval runs, and the work queue.

The store indexes; it does not hold the results. A job's object, events and checkpoints stay in its
run directory (docs/architecture.md) and an eval run's in its eval run directory; a row here says where
that directory is, the job's status for the queue, its metadata for filtering, and which worker holds it.

- SQLite in WAL mode at `$OPENRFT_HOME/store.db` by default; any SQLAlchemy URL through
  `OPENRFT_DATABASE_URL` (e.g. `postgresql+psycopg://...`).
- The schema is created and upgraded by the Alembic migrations shipped in `migrations/` (`migrate()`).
- Jobs and eval runs are queued rows. A worker claims one with a compare-and-set update
  (`UPDATE ... WHERE id = ? AND status = 'queued'`), so two workers can never claim the same row, on
  any database. The holder writes a heartbeat; `requeue_dead()` puts rows held by dead workers (a dead
  pid on this host, or a heartbeat older than `stale_after`) back in the queue.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    delete,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine

from openrft import paths

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
STALE_AFTER_S = 90.0  # a running row whose heartbeat is older than this is held by a dead worker

metadata = MetaData()


def _queue_columns() -> list[Column]:
    """The columns that make a table a work queue (jobs and eval runs)."""
    return [
        Column("status", String(32), nullable=False, index=True),
        Column("queue_order", BigInteger, nullable=True),  # lower runs first; kept when re-queued after a crash
        Column("requested_action", String(16), nullable=True),  # "cancel" | "pause": read at step boundaries
        Column("worker_host", String(255), nullable=True),
        Column("worker_pid", Integer, nullable=True),
        Column("heartbeat_at", Float, nullable=True),
        Column("attempts", Integer, nullable=False, default=0),  # how many times a worker claimed it
    ]


files = Table(
    "files", metadata,
    Column("id", String(64), primary_key=True),
    Column("filename", Text, nullable=False),  # the client's name, kept for display only (never a path)
    Column("purpose", String(32), nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("created_at", Integer, nullable=False),
    Column("sort_key", BigInteger, nullable=False, index=True),  # creation time in ns: a total order
)

jobs = Table(
    "jobs", metadata,
    Column("id", String(64), primary_key=True),
    Column("created_at", Integer, nullable=False),
    Column("sort_key", BigInteger, nullable=False, index=True),
    Column("metadata", JSON, nullable=True),
    Column("run_dir", Text, nullable=False),
    Column("source", String(16), nullable=False),  # "api": run by the workers; "cli": a run found in runs/
    *_queue_columns(),
)

evals = Table(
    "evals", metadata,
    Column("id", String(64), primary_key=True),
    Column("created_at", Integer, nullable=False),
    Column("sort_key", BigInteger, nullable=False, index=True),
    Column("object", JSON, nullable=False),  # the `eval` object as returned by the API
)

eval_runs = Table(
    "eval_runs", metadata,
    Column("id", String(64), primary_key=True),
    Column("eval_id", String(64), ForeignKey("evals.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("created_at", Integer, nullable=False),
    Column("sort_key", BigInteger, nullable=False, index=True),
    Column("run_dir", Text, nullable=False),
    Column("request", JSON, nullable=False),  # name, metadata, data_source as given
    Column("error", JSON, nullable=True),
    *_queue_columns(),
)


@dataclass(frozen=True)
class Queue:
    table: Table
    running: str  # the status of a claimed row: "running" for jobs, "in_progress" for eval runs
    own: tuple = ()  # conditions of the rows the workers own (jobs found in runs/ are run by the CLI)


QUEUES = {"job": Queue(jobs, "running", (jobs.c.source == "api",)),
          "eval_run": Queue(eval_runs, "in_progress")}


@dataclass(frozen=True)
class WorkerId:
    host: str
    pid: int

    @classmethod
    def this_process(cls) -> "WorkerId":
        return cls(socket.gethostname(), os.getpid())


def default_url() -> str:
    return os.environ.get("OPENRFT_DATABASE_URL") or f"sqlite:///{paths.home() / 'store.db'}"


def pid_alive(pid: int) -> bool:
    """Whether a process of this host is alive (a zombie, dead but not yet reaped, counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


class Store:
    """The index and queue; one per process (it holds a connection pool)."""

    def __init__(self, url: str | None = None):
        self.url = url or default_url()
        if self.url.startswith("sqlite"):
            self.engine: Engine = create_engine(self.url, connect_args={"check_same_thread": False, "timeout": 30})
            event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            self.engine = create_engine(self.url, pool_pre_ping=True)

    # --- schema ---

    def migrate(self) -> None:
        """Create or upgrade the schema to the latest Alembic revision (a no-op when it is current)."""
        from alembic import command

        with self.engine.begin() as connection:
            config = alembic_config(self.url)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    # --- generic rows ---

    def insert(self, table: Table, **values: Any) -> None:
        now = time.time_ns()
        values.setdefault("sort_key", now)
        values.setdefault("created_at", now // 1_000_000_000)
        with self.engine.begin() as conn:
            conn.execute(insert(table).values(**values))

    def get(self, table: Table, row_id: str) -> dict | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(table).where(table.c.id == row_id)).mappings().first()
        return dict(row) if row else None

    def rows(self, table: Table, *where, newest_first: bool = True) -> list[dict]:
        order = table.c.sort_key.desc() if newest_first else table.c.sort_key.asc()
        with self.engine.connect() as conn:
            result = conn.execute(select(table).where(*where).order_by(order)).mappings().all()
        return [dict(row) for row in result]

    def update(self, table: Table, row_id: str, *where, **values: Any) -> bool:
        """Update one row; with `where`, only if those conditions hold (compare-and-set). True if updated."""
        with self.engine.begin() as conn:
            result = conn.execute(update(table).where(table.c.id == row_id, *where).values(**values))
        return result.rowcount == 1

    def delete(self, table: Table, row_id: str) -> bool:
        with self.engine.begin() as conn:
            result = conn.execute(delete(table).where(table.c.id == row_id))
        return result.rowcount == 1

    # --- the queue ---

    def enqueue(self, kind: str, row_id: str) -> bool:
        """Put a row (back) at the end of its queue."""
        table = QUEUES[kind].table
        return self.update(table, row_id, status="queued", queue_order=time.time_ns(), requested_action=None,
                           worker_host=None, worker_pid=None, heartbeat_at=None)

    def claim(self, worker: WorkerId, kinds: tuple[str, ...] = ("job", "eval_run")) -> tuple[str, str] | None:
        """Take the oldest queued job or eval run for `worker`; None when the queue is empty."""
        for _ in range(20):  # another worker may win the race for a candidate: try the next one
            candidates = []
            with self.engine.connect() as conn:
                for kind in kinds:
                    table = QUEUES[kind].table
                    row = conn.execute(select(table.c.id, table.c.queue_order)
                                       .where(table.c.status == "queued", *QUEUES[kind].own)
                                       .order_by(table.c.queue_order, table.c.sort_key).limit(1)).first()
                    if row is not None:
                        candidates.append((row.queue_order or 0, kind, row.id))
            if not candidates:
                return None
            _, kind, row_id = min(candidates)
            queue = QUEUES[kind]
            with self.engine.begin() as conn:
                result = conn.execute(
                    update(queue.table).where(queue.table.c.id == row_id, queue.table.c.status == "queued")
                    .values(status=queue.running, worker_host=worker.host, worker_pid=worker.pid,
                            heartbeat_at=time.time(), attempts=queue.table.c.attempts + 1))
            if result.rowcount == 1:
                return kind, row_id
        return None

    def heartbeat(self, kind: str, row_id: str, worker: WorkerId) -> bool:
        """Record that `worker` still holds the row; False if it no longer does (it was re-queued)."""
        queue = QUEUES[kind]
        return self.update(queue.table, row_id, queue.table.c.worker_pid == worker.pid,
                           queue.table.c.worker_host == worker.host, queue.table.c.status == queue.running,
                           heartbeat_at=time.time())

    def requested_action(self, kind: str, row_id: str) -> str | None:
        row = self.get(QUEUES[kind].table, row_id)
        return row["requested_action"] if row else "cancel"

    def release(self, kind: str, row_id: str, status: str, worker: WorkerId | None = None, **values: Any) -> bool:
        """The holder is done with the row: record its final (or paused) status.

        With `worker`, only while that worker still holds the row (not after it was re-queued as dead).
        """
        table = QUEUES[kind].table
        held = (table.c.worker_pid == worker.pid, table.c.worker_host == worker.host) if worker else ()
        return self.update(table, row_id, *held, status=status, queue_order=None, requested_action=None,
                           worker_host=None, worker_pid=None, heartbeat_at=None, **values)

    def requeue(self, kind: str, row_id: str, worker: WorkerId) -> bool:
        """The holder gives the row back unfinished (it was interrupted): it keeps its place in the queue."""
        table = QUEUES[kind].table
        return self.update(table, row_id, table.c.worker_pid == worker.pid, table.c.worker_host == worker.host,
                           status="queued", worker_host=None, worker_pid=None, heartbeat_at=None)

    def requeue_dead(self, *, stale_after: float = STALE_AFTER_S) -> list[tuple[str, str, str]]:
        """Put rows held by dead workers back in the queue (keeping their place); returns (kind, id, new status)."""
        host = socket.gethostname()
        now = time.time()
        found = []
        for kind, queue in QUEUES.items():
            table = queue.table
            for row in self.rows(table, table.c.status == queue.running, *queue.own):
                dead_here = row["worker_host"] == host and row["worker_pid"] and not pid_alive(row["worker_pid"])
                silent = row["heartbeat_at"] is None or now - row["heartbeat_at"] > stale_after
                if not (dead_here or silent):
                    continue
                if row["requested_action"] == "cancel":
                    status = "cancelled" if kind == "job" else "canceled"
                elif row["requested_action"] == "pause" and kind == "job":
                    status = "paused"
                else:
                    status = "queued"
                ok = self.update(table, row["id"], table.c.status == queue.running,
                                 table.c.worker_pid == row["worker_pid"], status=status,
                                 queue_order=row["queue_order"] if status == "queued" else None,
                                 requested_action=None, worker_host=None, worker_pid=None, heartbeat_at=None)
                if ok:
                    found.append((kind, row["id"], status))
        return found


def alembic_config(url: str | None = None):
    """An Alembic config for the migrations shipped in this package (no alembic.ini needed)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["url"] = url or default_url()
    return config


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer: API + workers at once
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
