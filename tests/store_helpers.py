"""What the store tests look at beyond the store's API: where blobs' bytes are left."""

from __future__ import annotations

from sqlalchemy import inspect, select, text
from sqlalchemy.engine import Connection

from adapters.store.behavior_store import SqlBehaviorStore
from adapters.store.blob_store import FileBlobs
from adapters.store.database import create_engine
from adapters.store.tables import BlobBytes


async def stored_blobs(store: SqlBehaviorStore) -> set[str]:
    """Every blob whose bytes or index row the store still keeps, files on disk or rows in the database."""
    kept = await store.blob_hashes()
    if isinstance(store.blobs, FileBlobs):
        root = store.blobs.files.root
        return kept | ({path.name for path in root.rglob("*") if path.is_file()} if root.exists() else set())
    async with store.read_transaction() as session:
        return kept | set((await session.execute(select(BlobBytes.sha256))).scalars())


async def snapshot(url: str) -> dict[str, object]:
    """The schema revision, and every table with its columns and rows."""
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:

            def read(sync: Connection) -> dict[str, object]:
                tables = sorted(inspect(sync).get_table_names())
                return {
                    table: [
                        [c["name"] for c in inspect(sync).get_columns(table)],
                        sync.execute(text(f"SELECT * FROM {table} ORDER BY 1")).all(),
                    ]
                    for table in tables
                }

            return await connection.run_sync(read)
    finally:
        await engine.dispose()
