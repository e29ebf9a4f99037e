"""Alembic migrations on a file database: up from empty, down to base, up again, and in step with the models."""

from __future__ import annotations

import sqlite3

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from adapters.store import schema
from adapters.store.behavior_store import SqliteBehaviorStore
from adapters.store.database import create_engine, sqlite_file
from adapters.store.tables import Base

TABLES = {
    "users",
    "chats",
    "messages",
    "sticker_uses",
    "blobs",
    "generations",
    "preference_cache",
    "training_runs",
}


def _tables(db_url: str) -> set[str]:
    with sqlite3.connect(sqlite_file(db_url)) as connection:
        rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {name for (name,) in rows} - {"alembic_version", "sqlite_sequence"}


async def _revision(db_url: str) -> str | None:
    engine = create_engine(db_url)
    try:
        return await schema.current_revision(engine)
    finally:
        await engine.dispose()


async def test_upgrade_downgrade_upgrade_on_a_file_database(db_url: str) -> None:
    await schema.upgrade(db_url)
    assert _tables(db_url) == TABLES
    assert await _revision(db_url) == schema.head_revision()

    await schema.downgrade(db_url, "base")
    assert _tables(db_url) == set()
    assert await _revision(db_url) is None

    await schema.upgrade(db_url)
    assert _tables(db_url) == TABLES
    assert await _revision(db_url) == schema.head_revision()


async def test_opening_the_store_migrates_and_keeps_data_across_reopen(db_url: str, tmp_path, alice) -> None:
    async with await SqliteBehaviorStore.open(db_url, tmp_path / "blobs") as store:
        await store.set_consent(alice, personalize=True)
        await store.record_message(alice, "chat", "still here")
    async with await SqliteBehaviorStore.open(db_url, tmp_path / "blobs") as store:
        assert [item.text for item in await store.recent_history(alice, 5)] == ["still here"]


async def test_migrations_match_the_models(db_url: str) -> None:
    await schema.upgrade(db_url)
    engine = create_engine(db_url)

    def differences(connection: Connection) -> list[object]:
        return compare_metadata(MigrationContext.configure(connection), Base.metadata)

    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(differences) == []
    finally:
        await engine.dispose()
