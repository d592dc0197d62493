"""The first schema: files, jobs, evals, eval runs (jobs and eval runs are work queues).

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _queue_columns() -> list[sa.Column]:
    return [
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("queue_order", sa.BigInteger, nullable=True),
        sa.Column("requested_action", sa.String(16), nullable=True),
        sa.Column("worker_host", sa.String(255), nullable=True),
        sa.Column("worker_pid", sa.Integer, nullable=True),
        sa.Column("heartbeat_at", sa.Float, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "files",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("filename", sa.Text, nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.Integer, nullable=False),
        sa.Column("sort_key", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_files_sort_key", "files", ["sort_key"])
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.Integer, nullable=False),
        sa.Column("sort_key", sa.BigInteger, nullable=False),
        sa.Column("metadata", sa.JSON, nullable=True),
        sa.Column("run_dir", sa.Text, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        *_queue_columns(),
    )
    op.create_index("ix_jobs_sort_key", "jobs", ["sort_key"])
    op.create_index("ix_jobs_status", "jobs", ["status"])
    op.create_table(
        "evals",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.Integer, nullable=False),
        sa.Column("sort_key", sa.BigInteger, nullable=False),
        sa.Column("object", sa.JSON, nullable=False),
    )
    op.create_index("ix_evals_sort_key", "evals", ["sort_key"])
    op.create_table(
        "eval_runs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("eval_id", sa.String(64), sa.ForeignKey("evals.id", ondelete="CASCADE"), nullable=False),
        sa.Column("created_at", sa.Integer, nullable=False),
        sa.Column("sort_key", sa.BigInteger, nullable=False),
        sa.Column("run_dir", sa.Text, nullable=False),
        sa.Column("request", sa.JSON, nullable=False),
        sa.Column("error", sa.JSON, nullable=True),
        *_queue_columns(),
    )
    op.create_index("ix_eval_runs_eval_id", "eval_runs", ["eval_id"])
    op.create_index("ix_eval_runs_sort_key", "eval_runs", ["sort_key"])
    op.create_index("ix_eval_runs_status", "eval_runs", ["status"])


def downgrade() -> None:
    op.drop_table("eval_runs")
    op.drop_table("evals")
    op.drop_table("jobs")
    op.drop_table("files")
