"""Alembic environment: runs against the engine handed in by ``bot.store.db.upgrade``."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import bot.store.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from bot.store.db import make_engine

target_metadata = SQLModel.metadata
config = context.config


def run_migrations_online() -> None:
    engine = config.attributes.get("engine")
    if engine is None:  # plain `alembic` command line: the URL as the settings read it
        from bot.config import Settings

        engine = make_engine(Settings.from_env().database_url)
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        raw = connection.connection.dbapi_connection
        if sqlite:
            # A batch migration copies a table, drops the original and renames the copy; with
            # foreign keys enforced, dropping a table that other rows point at fails, so a store
            # with data could not be upgraded. The pragma only takes effect outside a transaction
            # (https://www.sqlite.org/foreignkeys.html#fk_enable): set on the raw connection before
            # the migration's transaction begins, checked with foreign_key_check before commit.
            raw.execute("PRAGMA foreign_keys=OFF")
        try:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=sqlite,
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RuntimeError(f"the migration left rows pointing at nothing: {broken[:5]}")
            connection.commit()
        finally:
            if sqlite:
                raw.execute("PRAGMA foreign_keys=ON")


run_migrations_online()
