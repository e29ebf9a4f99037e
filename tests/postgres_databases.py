"""Fresh PostgreSQL databases for the store tests, on the server PMG_TEST_DATABASE_URL names: each test
gets its own, created before it and dropped after it (with every connection to it)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from sqlalchemy.engine import make_url

# Read once at import: each test runs with every PMG_* variable cleared (conftest.isolated_env).
SERVER_URL = os.environ.get("PMG_TEST_DATABASE_URL")
HOW_TO_ENABLE = (
    "PostgreSQL store tests not run: set PMG_TEST_DATABASE_URL="
    "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres (.ci/run does) to run them"
)


def _run(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run `coroutine` to its end from sync code, also while a test's event loop is running."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, coroutine).result()


async def _admin(server: str, statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(make_url(server).set(drivername="postgresql").render_as_string(False))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextmanager
def fresh_database(server: str) -> Iterator[str]:
    """A new, empty database on `server`'s PostgreSQL; yields its URL, then drops it."""
    name = f"pmg_test_{uuid.uuid4().hex[:12]}"
    _run(_admin(server, f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        _run(_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
