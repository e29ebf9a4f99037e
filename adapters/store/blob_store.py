"""Where blobs' bytes live (PMG_BLOB_STORE): content-addressed files in a folder beside the front
(`files`, the default on SQLite) or `blob_bytes` rows in the database itself (`database`, the default on
PostgreSQL, so front ends on several hosts share them). Both write and delete inside the caller's write
transaction, so bytes and their index row come and go together."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Literal, Protocol

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.store.blob_files import BlobFiles, sha256_of
from adapters.store.errors import BlobUnreadableError
from adapters.store.tables import BlobBytes

BlobStoreKind = Literal["files", "database"]


class BlobStore(Protocol):
    async def write(self, session: AsyncSession, sha256: str, data: bytes) -> None: ...

    async def read(self, session: AsyncSession, sha256: str) -> bytes: ...

    async def delete(self, session: AsyncSession, sha256: str) -> None: ...

    async def local_file(self, session: AsyncSession, sha256: str) -> Path:
        """The bytes as a file of this host (a checkpoint the generator loads by path)."""
        ...


class FileBlobs:
    def __init__(self, root: Path) -> None:
        self.files = BlobFiles(root)

    async def write(self, session: AsyncSession, sha256: str, data: bytes) -> None:
        self.files.write(data)

    async def read(self, session: AsyncSession, sha256: str) -> bytes:
        return self.files.read(sha256)

    async def delete(self, session: AsyncSession, sha256: str) -> None:
        self.files.delete(sha256)

    async def local_file(self, session: AsyncSession, sha256: str) -> Path:
        return self.files.path(sha256)


class DatabaseBlobs:
    """Bytes in `blob_bytes`; `cache` holds the local copies `local_file` hands out."""

    def __init__(self, cache: Path) -> None:
        self.cache = cache

    async def write(self, session: AsyncSession, sha256: str, data: bytes) -> None:
        if await session.get(BlobBytes, sha256) is None:  # under the write lock: nobody adds it meanwhile
            session.add(BlobBytes(sha256=sha256, data=data))
            await session.flush()

    async def read(self, session: AsyncSession, sha256: str) -> bytes:
        data = (await session.execute(select(BlobBytes.data).where(BlobBytes.sha256 == sha256))).scalar()
        if data is None:
            raise BlobUnreadableError(f"blob {sha256} is not in the database")
        if sha256_of(data) != sha256:
            raise BlobUnreadableError(f"blob {sha256} is corrupted in the database")
        return bytes(data)

    async def delete(self, session: AsyncSession, sha256: str) -> None:
        await session.execute(delete(BlobBytes).where(BlobBytes.sha256 == sha256))

    async def local_file(self, session: AsyncSession, sha256: str) -> Path:
        path = BlobFiles(self.cache).path(sha256)
        if not path.exists():
            data = await self.read(session, sha256)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(temp_name, path)  # a half-written copy never has the blob's name
        return path
