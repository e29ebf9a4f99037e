"""`pmg db copy`: an existing store (rows and blobs) into an empty one, e.g. SQLite into PostgreSQL, in one
transaction on the target, verified by row counts and blob hashes; the source is only read."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Table, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from adapters.store import schema
from adapters.store.behavior_store import SqlBehaviorStore
from adapters.store.blob_files import sha256_of
from adapters.store.blob_store import BlobStoreKind
from adapters.store.database import ServerOptions, shown_url
from adapters.store.errors import StoreError
from adapters.store.tables import Base, Blob, BlobBytes

CHUNK = 1000  # rows read and inserted at a time


class CopyError(StoreError):
    """The copy could not start or did not verify; the target was left as it was."""


@dataclass
class CopyReport:
    rows: dict[str, int] = field(default_factory=dict)  # table -> rows copied (and found in the target)
    blobs: int = 0  # blobs whose bytes were copied and re-hashed in the target


async def copy_store(
    source: SqlBehaviorStore,
    target_url: str,
    target_blobs: Path,
    *,
    target_blob_store: BlobStoreKind | None,
) -> CopyReport:
    """Copy every row and blob of `source` (attached, not migrated) into the empty store at `target_url`
    (migrated to the latest schema first). The source must be at the latest schema: `pmg db upgrade` it."""
    source_revision = await schema.current_revision(source.engine)
    if source_revision != schema.head_revision():
        raise CopyError(
            f"the source is at revision {source_revision or 'none'}, not {schema.head_revision()}: "
            "run `pmg db upgrade` on it first"
        )
    target = await SqlBehaviorStore.open(
        target_url, target_blobs, server=ServerOptions(statement_timeout_s=None), blob_store=target_blob_store
    )
    try:
        if any((await target.counts()).values()) or await target.blob_hashes():
            raise CopyError(f"the target {shown_url(target_url)} is not empty; copy into a new database")
        report = CopyReport()
        tables = [table for table in Base.metadata.sorted_tables if table.name != BlobBytes.__tablename__]
        async with source.engine.connect() as reader, target.write_transaction() as session:
            for table in tables:  # parents before children
                report.rows[table.name] = await _copy_rows(reader, session, table)
            async with source.read_transaction() as source_session:
                for sha256 in (await source_session.execute(select(Blob.sha256))).scalars():
                    data = await source.blobs.read(source_session, sha256)
                    await target.blobs.write(session, sha256, data)
            if target.engine.dialect.name == "postgresql":
                await _advance_sequences(session, tables)
        report.blobs = await _verify(target, report)
        return report
    finally:
        await target.close()


async def _copy_rows(reader: AsyncConnection, session: AsyncSession, table: Table) -> int:
    copied = 0
    result = await reader.stream(select(table))
    async for chunk in result.mappings().partitions(CHUNK):
        await session.execute(insert(table), [dict(row) for row in chunk])
        copied += len(chunk)
    return copied


async def _advance_sequences(session: AsyncSession, tables: list[Table]) -> None:
    """Rows came with their ids: each id sequence must start after the largest, or new rows collide."""
    for table in tables:
        if "id" in table.c and table.c.id.primary_key:
            await session.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                    f"COALESCE((SELECT MAX(id) FROM {table.name}), 1), "
                    f"(SELECT MAX(id) FROM {table.name}) IS NOT NULL)"
                )
            )


async def _verify(target: SqlBehaviorStore, report: CopyReport) -> int:
    """Every table holds as many rows as were copied; every blob's bytes hash to its name."""
    async with target.read_transaction() as session:
        for name, copied in report.rows.items():
            table = Base.metadata.tables[name]
            found = (await session.execute(select(func.count()).select_from(table))).scalar_one()
            if found != copied:
                raise CopyError(f"{name}: {copied} rows copied but {found} in the target")
        hashes = list((await session.execute(select(Blob.sha256))).scalars())
        for sha256 in hashes:
            if sha256_of(await target.blobs.read(session, sha256)) != sha256:
                raise CopyError(f"blob {sha256} does not match its hash in the target")
    return len(hashes)
