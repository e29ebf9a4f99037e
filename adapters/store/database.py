"""The store's engines, one per dialect, equally safe under concurrent async writers.

The dialect seam: every SQLite-only mechanism and its PostgreSQL counterpart sits here.
- WAL + busy_timeout (readers never block the writer, a writer waits for the lock): PostgreSQL's MVCC
  gives both; nothing to set.
- BEGIN IMMEDIATE (a write transaction takes the write lock before it reads, so read-modify-write
  loses no update): a transaction-level advisory lock taken as the write transaction's first statement;
  writers queue on it as they do on SQLite's lock, readers never do.
- secure_delete and the TRUNCATE checkpoint after a deletion (deleted text overwritten in the file and
  gone from the WAL): no counterpart; a deleted row stays as a dead tuple until autovacuum reclaims it
  (README: Running on PostgreSQL).
- INSERT … ON CONFLICT: each dialect's own construct, same arguments.
- foreign_keys=ON per connection: PostgreSQL always enforces them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from adapters.store.errors import DatabaseUnavailableError, NotADatabaseError, UnsupportedDatabaseError

BUSY_TIMEOUT_MS = 30_000
WRITE_LOCK_KEY = 0x706D67  # "pmg": the advisory lock every PostgreSQL write transaction takes first
SUPPORTED = "sqlite+aiosqlite:///path/to/pmg.db or postgresql+asyncpg://user@host/db"
SQLITE_HEADER = b"SQLite format 3\x00"
# Execution option that makes a transaction take the write lock up front.
WRITE = {"pmg_write": True}


def shown_url(url: str) -> str:
    """The URL as errors and logs may show it: no password."""
    return make_url(url).render_as_string(hide_password=True)


def dialect_of(url: str) -> str:
    """`sqlite` or `postgresql`, for the two URL forms the store supports."""
    parsed = make_url(url)
    pair = (parsed.get_backend_name(), parsed.get_driver_name())
    if pair == ("postgresql", "asyncpg") and parsed.database:
        return "postgresql"
    if pair == ("sqlite", "aiosqlite"):
        sqlite_file(url)
        return "sqlite"
    raise UnsupportedDatabaseError(f"PMG_DB_URL={shown_url(url)!r} is not supported: use {SUPPORTED}")


def unavailable(engine: AsyncEngine, error: BaseException) -> DatabaseUnavailableError:
    """A lost or refused connection as one line that names the database (never its password)."""
    reason = str(getattr(error, "orig", None) or error).splitlines()[0]
    shown = engine.url.render_as_string(hide_password=True)
    return DatabaseUnavailableError(f"cannot reach the database {shown}: {reason}")


async def ensure_reachable(engine: AsyncEngine) -> None:
    """One connection, opened and closed: a server that is down, a refused login or a missing database
    become `unavailable`'s one line."""
    try:
        async with engine.connect():
            pass
    except (OSError, DBAPIError) as error:
        raise unavailable(engine, error) from None


def sqlite_file(url: str) -> Path:
    """The database file of a `sqlite+aiosqlite:///path` URL."""
    parsed = make_url(url)
    shown = shown_url(url)  # errors reach the terminal and the log
    if parsed.get_backend_name() != "sqlite" or parsed.get_driver_name() != "aiosqlite":
        raise UnsupportedDatabaseError(f"PMG_DB_URL={shown!r} is not supported: use {SUPPORTED}")
    if not parsed.database or parsed.database == ":memory:" or parsed.database.startswith("file:"):
        raise UnsupportedDatabaseError(
            f"PMG_DB_URL={shown!r} names no database file: use sqlite+aiosqlite:///path/to/pmg.db"
        )
    return Path(parsed.database)


def check_sqlite_file(path: Path) -> None:
    """Refuse a file that exists but is not SQLite, before SQLite can touch it."""
    if not path.exists() or path.stat().st_size == 0:
        return
    if path.is_dir():
        raise NotADatabaseError(f"{path} is a folder, not a database file; change PMG_DB_URL")
    with path.open("rb") as handle:
        header = handle.read(len(SQLITE_HEADER))
    if header != SQLITE_HEADER:
        raise NotADatabaseError(
            f"{path} exists but is not a SQLite database; it was left untouched. "
            "Move it away or point PMG_DB_URL at another file."
        )


def private_file(path: Path) -> None:
    """The database file readable by its owner alone (its WAL and shm files take its mode), in a folder
    made owner-only when the store creates it: the file holds people's chats."""
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    path.chmod(0o600)


@dataclass(frozen=True)
class ServerOptions:
    """How to connect to a PostgreSQL server (SQLite has none of these): PMG_DB_POOL_SIZE,
    PMG_DB_STATEMENT_TIMEOUT_S, PMG_DB_SSL_MODE."""

    pool_size: int = 5
    statement_timeout_s: float | None = 30.0  # None: no limit (migrations may rewrite big tables)
    ssl_mode: str = "prefer"  # libpq's sslmode words, which asyncpg takes


def create_engine(url: str, *, foreign_keys: bool = True, server: ServerOptions | None = None) -> AsyncEngine:
    """An engine whose transactions with the `WRITE` execution option take the write lock first."""
    if dialect_of(url) == "postgresql":
        return _postgresql_engine(url, server or ServerOptions())
    return _sqlite_engine(url, foreign_keys=foreign_keys)


def _postgresql_engine(url: str, server: ServerOptions) -> AsyncEngine:
    settings = {}
    if server.statement_timeout_s is not None:
        settings["statement_timeout"] = str(round(server.statement_timeout_s * 1000))  # milliseconds
    # pool_pre_ping: a connection the server dropped (a restart) is replaced, not handed to a request.
    engine = create_async_engine(
        url,
        pool_pre_ping=True,
        pool_size=server.pool_size,
        connect_args={"ssl": server.ssl_mode, "server_settings": settings},
    )

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(connection: Connection) -> None:
        if connection.get_execution_options().get("pmg_write"):
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})")

    return engine


def insert_for(engine: AsyncEngine) -> Any:
    """The dialect's INSERT, whose ON CONFLICT clauses take the same arguments on both."""
    return postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert


async def empty_wal(engine: AsyncEngine, *, busy_ms: int) -> bool:
    """After a deletion: SQLite's WAL copied into the main file and emptied (TRUNCATE), so the deleted
    text survives in neither; False when a reader blocked it for `busy_ms`. PostgreSQL has no such file
    to empty (its dead tuples wait for autovacuum): True."""
    if engine.dialect.name != "sqlite":
        return True
    async with engine.connect() as connection:
        driver: Any = (await connection.get_raw_connection()).driver_connection
        # TRUNCATE waits for readers through the busy handler: a short wait here, the caller retries.
        await driver.execute(f"PRAGMA busy_timeout={busy_ms}")
        try:
            cursor = await driver.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            busy, _, _ = await cursor.fetchone()
        finally:
            await driver.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    return not busy


def _sqlite_engine(url: str, *, foreign_keys: bool) -> AsyncEngine:
    """Transactions DEFERRED for reads and IMMEDIATE with `WRITE` options.

    Deferred transactions that read and then write lose updates under concurrent writers
    (SQLITE_BUSY on lock upgrade, which no busy timeout waits for); IMMEDIATE queues them instead.
    """
    path = sqlite_file(url)
    check_sqlite_file(path)
    private_file(path)
    engine = create_async_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine.sync_engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # the driver must not BEGIN on its own
        cursor = dbapi_connection.cursor()
        for pragma in (
            "journal_mode=WAL",
            f"busy_timeout={BUSY_TIMEOUT_MS}",
            f"foreign_keys={'ON' if foreign_keys else 'OFF'}",
            "secure_delete=ON",  # deleted rows are overwritten, so /forget leaves no text behind
            "synchronous=NORMAL",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(connection: Connection) -> None:
        mode = "IMMEDIATE" if connection.get_execution_options().get("pmg_write") else "DEFERRED"
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine
