"""Alembic migrations of the service store (applied by `Store.migrate()` on start)."""
