"""The store: Alembic schema, WAL, the queue's claim (never twice, across processes) and dead-worker recovery."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import time

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from openrft.service.store import Store, WorkerId, eval_runs, evals, jobs, metadata


@pytest.fixture()
def store(tmp_path) -> Store:
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    store.migrate()
    return store


def add_job(store: Store, job_id: str, *, status: str = "queued", source: str = "api", order: int | None = None):
    store.insert(jobs, id=job_id, run_dir=f"/nowhere/{job_id}", source=source, status=status,
                 queue_order=order if order is not None else time.time_ns(), attempts=0)


def test_migration_creates_the_schema_of_the_models(store):
    with store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == "0001"
    store.migrate()  # at head: nothing to do, nothing breaks


def test_database_url_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENRFT_DATABASE_URL", f"sqlite:///{tmp_path / 'elsewhere.db'}")
    Store().migrate()
    assert (tmp_path / "elsewhere.db").is_file()


def test_claim_takes_the_oldest_job_or_eval_run_first(store):
    add_job(store, "ftjob-b", order=20)
    add_job(store, "ftjob-a", order=10)
    add_job(store, "ftjob-cli", order=1, source="cli")  # runs found in runs/ belong to the CLI, not the workers
    store.insert(evals, id="eval_1", object={})
    store.insert(eval_runs, id="evalrun_1", eval_id="eval_1", run_dir="/x", request={}, status="queued",
                 queue_order=15, attempts=0)
    me = WorkerId.this_process()
    assert [store.claim(me) for _ in range(4)] == [("job", "ftjob-a"), ("eval_run", "evalrun_1"),
                                                  ("job", "ftjob-b"), None]
    row = store.get(jobs, "ftjob-a")
    assert (row["status"], row["worker_pid"], row["attempts"]) == ("running", me.pid, 1)
    assert store.get(eval_runs, "evalrun_1")["status"] == "in_progress"


def _claim_all(url: str, out) -> None:
    store = Store(url)
    me = WorkerId.this_process()
    claimed = []
    while (got := store.claim(me, ("job",))) is not None:
        claimed.append(got[1])
    out.put(claimed)


def test_concurrent_workers_never_claim_the_same_job(store):
    for i in range(40):
        add_job(store, f"ftjob-{i:02d}", order=i)
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_claim_all, args=(store.url, out)) for _ in range(4)]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    claimed = [job for result in results for job in result]
    assert sorted(claimed) == [f"ftjob-{i:02d}" for i in range(40)]  # every job once, none twice
    assert all(row["attempts"] == 1 for row in store.rows(jobs))


def test_dead_and_silent_workers_lose_their_jobs(store):
    for name in ("dead", "silent", "alive", "cancel-asked"):
        add_job(store, f"ftjob-{name}", order={"dead": 5, "silent": 6, "alive": 7, "cancel-asked": 8}[name])
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    me = WorkerId.this_process()
    dead = WorkerId(me.host, gone.pid)
    assert store.claim(dead, ("job",)) == ("job", "ftjob-dead")
    assert store.claim(me, ("job",)) == ("job", "ftjob-silent")
    store.update(jobs, "ftjob-silent", heartbeat_at=time.time() - 1000)
    assert store.claim(me, ("job",)) == ("job", "ftjob-alive")
    assert store.claim(dead, ("job",)) == ("job", "ftjob-cancel-asked")
    store.update(jobs, "ftjob-cancel-asked", requested_action="cancel")

    found = sorted(store.requeue_dead(stale_after=60))
    assert found == [("job", "ftjob-cancel-asked", "cancelled"), ("job", "ftjob-dead", "queued"),
                     ("job", "ftjob-silent", "queued")]
    assert store.get(jobs, "ftjob-alive")["status"] == "running"
    assert store.get(jobs, "ftjob-dead")["queue_order"] == 5  # back at its place in the queue
    # The old holder cannot overwrite the job that was taken from it.
    assert not store.release("job", "ftjob-silent", "succeeded", me)
    assert store.claim(me, ("job",)) == ("job", "ftjob-dead")
    assert store.get(jobs, "ftjob-dead")["attempts"] == 2
    assert store.release("job", "ftjob-dead", "succeeded", me)
    assert store.get(jobs, "ftjob-dead")["status"] == "succeeded"


def test_heartbeat_only_from_the_holder(store):
    add_job(store, "ftjob-1")
    me = WorkerId.this_process()
    store.claim(me)
    assert store.heartbeat("job", "ftjob-1", me)
    assert not store.heartbeat("job", "ftjob-1", WorkerId(me.host, me.pid + 1))
