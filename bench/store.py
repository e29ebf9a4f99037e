"""Benchmark: the behavior store on SQLite and on PostgreSQL side by side, in one run: recording throughput
(messages/s, 8 concurrent writers) and /forget latency for a user with 10k rows.

PostgreSQL is the server at PMG_BENCH_DATABASE_URL (default: the local one, trust auth); the bench makes a
database of its own there and drops it after."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from adapters.store.behavior_store import SqlBehaviorStore
from adapters.store.scratch_database import scratch_database
from bot.identity import UserKey

SERVER = os.environ.get("PMG_BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
WRITERS = 8


@asynccontextmanager
async def _database(backend: str, folder: Path) -> AsyncIterator[str]:
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{folder / 'bench.db'}"
        return
    async with scratch_database(SERVER, "pmg_bench") as url:
        yield url


async def _measure(backend: str, messages: int, forget_rows: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="pmg-store-bench-") as folder:
        async with _database(backend, Path(folder)) as url:
            store = await SqlBehaviorStore.open(url, Path(folder) / "blobs")
            try:
                writers = [UserKey.of("telegram", 1000 + i) for i in range(WRITERS)]
                for user in writers:
                    await store.set_consent(user, personalize=True)

                async def writer(user: UserKey) -> None:
                    for index in range(messages // WRITERS):
                        await store.record_message(user, "group", f"message {index}", message_id=index)

                started = time.perf_counter()
                await asyncio.gather(*(writer(user) for user in writers))
                recording = time.perf_counter() - started

                heavy = UserKey.of("telegram", 42)
                await store.set_consent(heavy, personalize=True)
                for index in range(forget_rows):
                    await store.record_message(heavy, "group", f"history {index}", message_id=f"h{index}")
                started = time.perf_counter()
                deleted = await store.forget_user(heavy)
                forget = time.perf_counter() - started
            finally:
                await store.close()
    return {
        "backend": backend,
        "messages_per_s": round(WRITERS * (messages // WRITERS) / recording, 1),
        "forget_s": round(forget, 3),
        "forget_rows": deleted.get("messages", 0),
    }


async def measure(messages: int, forget_rows: int) -> dict[str, Any]:
    rows = [await _measure(backend, messages, forget_rows) for backend in ("sqlite", "postgresql")]
    sqlite, postgresql = rows
    return {
        "writers": WRITERS,
        "messages": messages,
        "rows": rows,
        "throughput_postgresql_over_sqlite": round(
            postgresql["messages_per_s"] / sqlite["messages_per_s"], 2
        ),
        "forget_postgresql_over_sqlite": round(postgresql["forget_s"] / sqlite["forget_s"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=2000, help="Recorded by 8 writers together.")
    parser.add_argument("--forget-rows", type=int, default=10_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(measure(args.messages, args.forget_rows))
    if args.json:
        print(json.dumps(result))
        return
    for row in result["rows"]:
        print(
            f"{row['backend']:<10} {row['messages_per_s']:8.1f} messages/s ({WRITERS} writers)   "
            f"/forget of {row['forget_rows']} rows: {row['forget_s']:.3f} s"
        )
    print(
        f"postgresql/sqlite: throughput ×{result['throughput_postgresql_over_sqlite']}, "
        f"/forget time ×{result['forget_postgresql_over_sqlite']}"
    )


if __name__ == "__main__":
    main()
