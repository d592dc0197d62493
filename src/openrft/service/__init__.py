"""The job service: an OpenAI-compatible HTTP API over openrft, with a store and worker processes.

- `app.py` builds the FastAPI app (auth, OpenAI error objects, the routers of `files.py`, `jobs.py`,
  `graders.py`, `evals.py`, `chat.py`);
- `store.py` is the SQLAlchemy index of files, jobs, evals and eval runs, with the work queue;
  `migrations/` holds its Alembic schema history (applied on start);
- `worker.py` is the process that claims queued jobs and eval runs and runs them;
- `commands.py` is `openrft serve`, which starts the workers and uvicorn.

Jobs and eval runs live in their run directories (see docs/architecture.md); the store only indexes them.
"""
