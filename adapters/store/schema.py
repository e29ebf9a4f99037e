"""Schema revisions: upgrade, downgrade and inspect the store with Alembic, refusing unknown schemas."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

import migrations
from adapters.store.database import (
    WRITE,
    ServerOptions,
    create_engine,
    dialect_of,
    ensure_reachable,
    shown_url,
    sqlite_file,
)
from adapters.store.errors import SchemaTooNewError, StoreError

MIGRATIONS_DIR = Path(migrations.__file__).parent


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str:
    head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
    if head is None:
        raise StoreError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def known_revisions() -> set[str]:
    return {script.revision for script in ScriptDirectory(str(MIGRATIONS_DIR)).walk_revisions()}


def store_name(url: str) -> str:
    """What messages call the store: its file, or its URL without the password."""
    return str(sqlite_file(url)) if dialect_of(url) == "sqlite" else shown_url(url)


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _refuse_unknown_revision(connection: Connection, url: str) -> None:
    revision = _current(connection)
    if revision is None:
        return
    if revision not in known_revisions():
        raise SchemaTooNewError(
            f"{store_name(url)} has schema revision {revision!r}, unknown to this pmg-stickers "
            f"(it knows up to {head_revision()!r}): it was made by a newer version and was left "
            "untouched. Upgrade pmg-stickers, or point PMG_DB_URL at another database."
        )


async def current_revision(engine: AsyncEngine) -> str | None:
    await ensure_reachable(engine)
    async with engine.connect() as connection:
        return await connection.run_sync(_current)


async def _migrate(url: str, action: str, revision: str, server: ServerOptions | None) -> None:
    # Batch migrations copy tables; with foreign keys on, dropping the old copy would cascade. No
    # statement timeout: rewriting a big table may take longer than any request should.
    engine = create_engine(
        url, foreign_keys=False, server=replace(server or ServerOptions(), statement_timeout_s=None)
    )
    try:
        await ensure_reachable(engine)
        async with engine.connect() as connection:
            connection = await connection.execution_options(**WRITE)
            await connection.run_sync(_refuse_unknown_revision, url)
            await connection.commit()

            def run(sync_connection: Connection) -> None:
                config = alembic_config(url)
                config.attributes["connection"] = sync_connection
                if action == "upgrade":
                    command.upgrade(config, revision)
                else:
                    command.downgrade(config, revision)

            await connection.run_sync(run)
            await connection.commit()
            if dialect_of(url) != "sqlite":
                return  # PostgreSQL checked every foreign key as the migration ran
            violations = (await connection.execute(text("PRAGMA foreign_key_check"))).all()
            if violations:
                raise StoreError(f"migration left {len(violations)} foreign-key violations: {violations[:3]}")
    finally:
        await engine.dispose()


async def upgrade(url: str, revision: str = "head", *, server: ServerOptions | None = None) -> None:
    await _migrate(url, "upgrade", revision, server)


async def downgrade(url: str, revision: str, *, server: ServerOptions | None = None) -> None:
    await _migrate(url, "downgrade", revision, server)
