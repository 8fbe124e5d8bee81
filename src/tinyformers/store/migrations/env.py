"""Alembic's environment for the store.

``store.db.open_store`` runs the migrations programmatically, handing over an open connection
(in ``config.attributes["connection"]``) whose transaction it commits itself. A developer
writing a new migration can also run the ``alembic`` command with an ``alembic.ini`` whose
``script_location`` is this folder and whose ``sqlalchemy.url`` names a scratch database:
``alembic revision --autogenerate -m "…"`` compares that database with ``store/schema.py``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from tinyformers.store.schema import metadata


def configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters by copying
        compare_type=True,
    )


def run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        configure(connection)
        context.run_migrations()
        return
    engine = create_engine(context.config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        configure(connection)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


def run_offline() -> None:
    """``alembic upgrade head --sql``: the SQL, printed instead of run."""
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
