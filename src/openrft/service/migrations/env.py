"""Alembic environment: runs the migrations on the connection given by `Store.migrate()`.

With plain `alembic` (no connection given), it connects to `config.attributes["url"]`, the
`sqlalchemy.url` option, or the store's default URL.
"""

from alembic import context
from sqlalchemy import create_engine

from openrft.service.store import default_url, metadata

config = context.config


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url") or default_url()
    with create_engine(url).begin() as connection:
        _migrate(connection)


def _migrate(connection) -> None:
    context.configure(connection=connection, target_metadata=metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    context.configure(url=config.attributes.get("url") or default_url(), target_metadata=metadata,
                      literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run()
