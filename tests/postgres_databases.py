"""Fresh PostgreSQL databases for the store tests, on the server PMG_TEST_DATABASE_URL names: each test
gets its own, created before it and dropped after it (with every connection to it)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

from adapters.store.scratch_database import create_database, drop_database

# Read once at import: each test runs with every PMG_* variable cleared (conftest.isolated_env).
SERVER_URL = os.environ.get("PMG_TEST_DATABASE_URL")
HOW_TO_ENABLE = (
    "PostgreSQL store tests not run: set PMG_TEST_DATABASE_URL="
    "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres (.ci/run does) to run them"
)
T = TypeVar("T")


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run `coroutine` to its end from sync code, also while a test's event loop is running."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@contextmanager
def fresh_database(server: str) -> Iterator[str]:
    """A new, empty database on `server`'s PostgreSQL; yields its URL, then drops it."""
    url = _run(create_database(server, "pmg_test"))
    try:
        yield url
    finally:
        _run(drop_database(server, url))
