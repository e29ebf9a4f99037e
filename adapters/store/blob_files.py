"""Content-addressed files on disk: `<root>/ab/cd/<sha256>`, written atomically."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from adapters.store.errors import BlobUnreadableError, StoreError


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class BlobFiles:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise StoreError(f"not a sha256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def write(self, data: bytes) -> str:
        """Store `data` and return its sha256; writing the same bytes twice is a no-op."""
        sha256 = sha256_of(data)
        target = self.path(sha256)
        if target.exists() and target.stat().st_size == len(data):
            return sha256
        target.parent.mkdir(parents=True, exist_ok=True)
        # Write beside the target and rename: a crash never leaves a half file under a valid hash.
        fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp_name, target)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
        return sha256

    def read(self, sha256: str) -> bytes:
        data = self.path(sha256).read_bytes()
        if sha256_of(data) != sha256:
            raise BlobUnreadableError(f"blob {sha256} is corrupted on disk ({self.path(sha256)})")
        return data

    def delete(self, sha256: str) -> None:
        self.path(sha256).unlink(missing_ok=True)
