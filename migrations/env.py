"""Alembic environment. photocat calls it with an open connection (store.migrate); the
`alembic` command line uses `-x db=...`, else PHOTOCAT_DB."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from catalog.tables import metadata
from catalog.urls import database_url

config = context.config
target_metadata = metadata


def run_with(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_with(connection)
        return
    url = database_url(context.get_x_argument(as_dictionary=True).get("db"))
    engine = create_engine(url)
    with engine.connect() as conn:
        run_with(conn)
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("photocat migrations run online only: pass -x db=PATH_OR_URL")
run_migrations_online()
