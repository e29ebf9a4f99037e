"""Files the bot writes for a user in the data dir (console stickers and exports, `pmg sticker` output):
owner-only, never overwriting one another, and deleted with the user by /forget."""

from __future__ import annotations

import hashlib
import itertools
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

from bot.identity import UserKey, file_stem


def private_folder(path: Path) -> Path:
    """`path`, created if needed and readable by its owner alone: it holds people's data."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def write_new_private(path: Path, data: bytes) -> None:
    """Write a new owner-only file; an existing one is never replaced (FileExistsError)."""
    descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)


class UserFiles:
    """One folder per user under `root`, named by a readable stem and a hash of the whole key: two names
    that clean to the same stem ("zoë/x", "zoë?x") still get folders of their own."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def folder(self, user: UserKey) -> Path:
        digest = hashlib.sha256(str(user).encode()).hexdigest()[:12]
        return self.root / f"{user.platform.value}-{file_stem(user.external_id)}-{digest}"

    def write(self, user: UserKey, name: str, suffix: str, data: bytes) -> Path:
        """A new file `<name>-<UTC time>-<n><suffix>` in the user's folder; returns its path."""
        folder = private_folder(self.folder(user))
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        for number in itertools.count(1):
            path = folder / f"{file_stem(name)}-{stamp}-{number}{suffix}"
            try:
                write_new_private(path, data)
            except FileExistsError:
                continue
            return path
        raise AssertionError("unreachable: itertools.count never ends")

    def write_sticker(self, user: UserKey, webp: bytes, png: bytes) -> Path:
        """A sticker as a new WebP with its PNG beside it (same name); returns the WebP's path."""
        path = self.write(user, "sticker", ".webp", webp)
        write_new_private(path.with_suffix(".png"), png)
        return path

    def delete(self, user: UserKey) -> int:
        """Remove the user's folder; returns how many files it held."""
        folder = self.folder(user)
        if not folder.is_dir():
            return 0
        count = sum(1 for item in folder.rglob("*") if item.is_file())
        shutil.rmtree(folder)
        return count
