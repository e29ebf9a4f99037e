"""The store under concurrent async writers, on both backends: no lost read-modify-write updates; the
SQLite pragmas and the PostgreSQL statement timeout in force."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.store.behavior_store import SqlBehaviorStore
from adapters.store.database import ServerOptions, create_engine
from adapters.store.tables import User
from bot.identity import UserKey

pytestmark = pytest.mark.both_backends
WRITERS = 8
TRANSACTIONS = 50

Transaction = Callable[[], AbstractAsyncContextManager[AsyncSession]]


async def _increment_concurrently(transaction: Transaction, user: UserKey) -> int:
    """8 writers × 50 transactions that read a counter, yield to the others, and write it + 1."""

    async def writer() -> int:
        failures = 0
        for _ in range(TRANSACTIONS):
            try:
                async with transaction() as session:
                    where = (User.platform == user.platform.value, User.external_id == user.external_id)
                    value = (await session.execute(select(User.behavior_seq).where(*where))).scalar_one()
                    await asyncio.sleep(0)  # let the other writers interleave between read and write
                    await session.execute(update(User).where(*where).values(behavior_seq=value + 1))
            except OperationalError:
                failures += 1
        return failures

    return sum(await asyncio.gather(*(writer() for _ in range(WRITERS))))


@pytest.mark.sqlite_only
async def test_connections_use_wal_busy_timeout_foreign_keys_and_secure_delete(
    store: SqlBehaviorStore,
) -> None:
    async with store.read_transaction() as session:
        pragmas = {
            name: (await session.execute(text(f"PRAGMA {name}"))).scalar_one()
            for name in ("journal_mode", "busy_timeout", "foreign_keys", "secure_delete")
        }
    assert pragmas == {"journal_mode": "wal", "busy_timeout": 30_000, "foreign_keys": 1, "secure_delete": 1}


async def test_immediate_write_transactions_lose_no_update(store: SqlBehaviorStore, alice: UserKey) -> None:
    await store.set_consent(alice, personalize=True)

    failures = await _increment_concurrently(store.write_transaction, alice)

    assert failures == 0
    assert await store.behavior_watermark(alice) == WRITERS * TRANSACTIONS


async def test_transactions_without_the_write_lock_would_lose_updates(
    store: SqlBehaviorStore, alice: UserKey
) -> None:
    """The control, so the test above can fail: the same work in plain transactions loses updates. SQLite
    fails them on lock upgrade (SQLITE_BUSY); PostgreSQL (READ COMMITTED) lets two writers read the same
    value and both write value + 1, silently."""
    await store.set_consent(alice, personalize=True)

    failures = await _increment_concurrently(store.read_transaction, alice)

    lost = WRITERS * TRANSACTIONS - await store.behavior_watermark(alice)
    assert lost > 0
    assert failures == (0 if store.engine.dialect.name == "postgresql" else lost)


async def test_concurrent_recording_keeps_every_message(store: SqlBehaviorStore, alice: UserKey) -> None:
    await store.set_consent(alice, personalize=True)

    async def writer(number: int) -> None:
        for index in range(TRANSACTIONS):
            await store.record_message(alice, "chat", f"w{number} m{index}", message_id=f"{number}-{index}")

    await asyncio.gather(*(writer(number) for number in range(WRITERS)))

    assert (await store.counts())["messages"] == WRITERS * TRANSACTIONS
    assert await store.behavior_watermark(alice) == WRITERS * TRANSACTIONS


@pytest.mark.postgresql_only
async def test_a_statement_past_the_timeout_is_cancelled(db_url: str) -> None:
    """PMG_DB_STATEMENT_TIMEOUT_S reaches the server: a statement that runs longer is stopped there."""
    engine = create_engine(
        db_url, server=ServerOptions(pool_size=1, statement_timeout_s=0.2, ssl_mode="disable")
    )
    try:
        async with engine.connect() as connection:
            with pytest.raises(DBAPIError, match="statement timeout"):
                await connection.execute(text("SELECT pg_sleep(2)"))
    finally:
        await engine.dispose()


WRITER_PROCESS = """
import asyncio, sys
from pathlib import Path
from adapters.store.behavior_store import SqlBehaviorStore
from bot.identity import UserKey

async def main(url, blobs, name):
    store = await SqlBehaviorStore.open(url, Path(blobs))
    user = UserKey.of("telegram", 7)
    for index in range(100):
        await store.record_message(user, "chat", f"{name} {index}", message_id=f"{name}-{index}")
        async with store.write_transaction() as session:  # a read-modify-write beside each message
            seq = (await session.execute(select(User.behavior_seq).where(User.external_id == "7"))).scalar_one()
            await session.execute(update(User).where(User.external_id == "7").values(behavior_seq=seq + 1))
    await store.close()

from sqlalchemy import select, update
from adapters.store.tables import User
asyncio.run(main(*sys.argv[1:]))
"""


async def test_two_processes_write_one_database_at_once(
    store: SqlBehaviorStore, db_url: str, tmp_path: Path
) -> None:
    user = UserKey.of("telegram", 7)
    await store.set_consent(user, personalize=True)
    before = await store.behavior_watermark(user)

    writers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            WRITER_PROCESS,
            db_url,
            str(tmp_path / "blobs"),
            name,
            stderr=asyncio.subprocess.PIPE,
        )
        for name in ("first", "second")
    ]
    results = [await writer.communicate() for writer in writers]

    assert [writer.returncode for writer in writers] == [0, 0], [err.decode()[-2000:] for _, err in results]
    assert (await store.counts())["messages"] == 200
    # each message bumps the watermark once, each read-modify-write once more: none lost
    assert await store.behavior_watermark(user) == before + 400
