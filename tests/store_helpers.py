"""What the store tests look at beyond the store's API: where blobs' bytes are left."""

from __future__ import annotations

from sqlalchemy import select

from adapters.store.behavior_store import SqliteBehaviorStore
from adapters.store.blob_store import FileBlobs
from adapters.store.tables import BlobBytes


async def stored_blobs(store: SqliteBehaviorStore) -> set[str]:
    """Every blob whose bytes or index row the store still keeps, files on disk or rows in the database."""
    kept = await store.blob_hashes()
    if isinstance(store.blobs, FileBlobs):
        root = store.blobs.files.root
        return kept | ({path.name for path in root.rglob("*") if path.is_file()} if root.exists() else set())
    async with store.read_transaction() as session:
        return kept | set((await session.execute(select(BlobBytes.sha256))).scalars())
