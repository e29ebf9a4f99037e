"""Alembic migrations on a file database: up from empty, down to base, up again, and in step with the models."""

from __future__ import annotations

import json

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from typer.testing import CliRunner

from adapters.store import schema
from adapters.store.behavior_store import SqlBehaviorStore
from adapters.store.database import create_engine
from adapters.store.tables import Base
from bot.cli import app

pytestmark = pytest.mark.both_backends
TABLES = {
    "users",
    "chats",
    "messages",
    "sticker_uses",
    "blobs",
    "blob_bytes",
    "generations",
    "preference_cache",
    "training_runs",
    "candidate_images",
    "sticker_feedback",
    "sticker_packs",
}


async def _tables(db_url: str) -> set[str]:
    engine = create_engine(db_url)
    try:
        async with engine.connect() as connection:
            names = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
    finally:
        await engine.dispose()
    return set(names) - {"alembic_version", "sqlite_sequence"}


async def _revision(db_url: str) -> str | None:
    engine = create_engine(db_url)
    try:
        return await schema.current_revision(engine)
    finally:
        await engine.dispose()


async def test_upgrade_downgrade_upgrade(db_url: str) -> None:
    await schema.upgrade(db_url)
    assert await _tables(db_url) == TABLES
    assert await _revision(db_url) == schema.head_revision()

    await schema.downgrade(db_url, "base")
    assert await _tables(db_url) == set()
    assert await _revision(db_url) is None

    await schema.upgrade(db_url)
    assert await _tables(db_url) == TABLES
    assert await _revision(db_url) == schema.head_revision()


async def test_opening_the_store_migrates_and_keeps_data_across_reopen(db_url: str, tmp_path, alice) -> None:
    async with await SqlBehaviorStore.open(db_url, tmp_path / "blobs") as store:
        await store.set_consent(alice, personalize=True)
        await store.record_message(alice, "chat", "still here")
    async with await SqlBehaviorStore.open(db_url, tmp_path / "blobs") as store:
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


def test_db_commands_and_doctor_read_the_store(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PMG_DB_URL", db_url)
    runner = CliRunner()

    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    current = runner.invoke(app, ["db", "current"])
    doctor = runner.invoke(app, ["doctor", "--json"])

    assert f"revision {schema.head_revision()} (latest)" in current.output
    checks = {check["name"]: check for check in json.loads(doctor.stdout)["checks"]}
    assert checks["schema"] == {
        "section": "database",
        "name": "schema",
        "ok": True,
        "detail": f"revision {schema.head_revision()} (latest)",
    }
