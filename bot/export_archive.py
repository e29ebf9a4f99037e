"""/export as one zip: the user's data as JSON, and every image of theirs the bot keeps (sticker images
kept for training, the stickers it made for them), so "all of it" is all of it."""

from __future__ import annotations

import io
import json
import logging
import mimetypes
import zipfile
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

ARCHIVE_NAME = "pmg-stickers-export.zip"
DATA_NAME = "pmg-stickers-export.json"


def export_archive(data: dict[str, Any], read_blob: Callable[[str], bytes]) -> bytes:
    """The zip of `data` (a store export) with `images/<sha256>.<ext>` for each blob it lists; each
    blob entry names its file, or says why it is missing (a file lost or damaged on disk)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for blob in data.get("blobs", []):
            extension = mimetypes.guess_extension(blob.get("mime") or "") or ".bin"
            name = f"images/{blob['sha256']}{extension}"
            try:
                archive.writestr(name, read_blob(blob["sha256"]))
            except Exception as error:  # one unreadable file must not cost the user the whole export
                log.warning("export: blob %s unreadable (%s)", blob["sha256"], error)
                blob["missing"] = "the file is missing or damaged on the server"
                continue
            blob["file"] = name
        archive.writestr(DATA_NAME, json.dumps(data, ensure_ascii=False, indent=2))
    return buffer.getvalue()
