"""Alembic environment (async template): runs on a connection handed over by adapters.store.schema."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from alembic import context
from sqlalchemy.engine import Connection

from adapters.store.database import create_engine
from adapters.store.tables import Base, UTCDateTime

config = context.config
target_metadata = Base.metadata


def render_item(type_: str, item: Any, autogen_context: Any) -> str | Literal[False]:
    """Migrations spell the store's UTCDateTime as a plain DateTime: they must not import app code."""
    if type_ == "type" and isinstance(item, UTCDateTime):
        return "sa.DateTime()"
    return False


def run_migrations(connection: Connection) -> None:
    # render_as_batch: SQLite alters tables by copy-and-move.
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_with_own_engine() -> None:
    """For a plain `alembic` command line: foreign keys off while tables are copied."""
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "", foreign_keys=False)
    async with engine.connect() as connection:
        await connection.run_sync(run_migrations)
    await engine.dispose()


if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()
elif (shared := config.attributes.get("connection")) is not None:
    run_migrations(shared)
else:
    asyncio.run(run_with_own_engine())
