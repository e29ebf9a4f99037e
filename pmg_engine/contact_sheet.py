"""Contact sheets: stickers side by side on a chat-like checkerboard, a caption line under each."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

CELL = 192  # px per sticker on the sheet
LABEL = 36  # px of caption band under each sticker


def _checkerboard(width: int, height: int, square: int = 12) -> Image.Image:
    """Transparency shown the way image viewers do, so a white cut-out border stays visible."""
    board = Image.new("RGB", (width, height), (236, 238, 242))
    draw = ImageDraw.Draw(board)
    for y in range(0, height, square):
        for x in range((y // square) % 2 * square, width, 2 * square):
            draw.rectangle((x, y, x + square - 1, y + square - 1), fill=(214, 218, 224))
    return board


def contact_sheet(
    stickers: Sequence[Image.Image], labels: Sequence[str], path: Path, *, columns: int = 5, title: str = ""
) -> Path:
    """Write a PNG grid of `stickers` with `labels` (two short lines at most) under each."""
    path.parent.mkdir(parents=True, exist_ok=True)
    contact_sheet_image(stickers, labels, columns=columns, title=title).save(path)
    return path


def contact_sheet_png(stickers: Sequence[Image.Image], labels: Sequence[str], *, title: str = "") -> bytes:
    """The same grid as PNG bytes, to send in a chat."""
    buffer = io.BytesIO()
    contact_sheet_image(stickers, labels, title=title).save(buffer, "PNG")
    return buffer.getvalue()


def contact_sheet_image(
    stickers: Sequence[Image.Image], labels: Sequence[str], *, columns: int = 5, title: str = ""
) -> Image.Image:
    if not stickers:
        raise ValueError("a contact sheet needs at least one sticker")
    rows = -(-len(stickers) // columns)
    header = 28 if title else 0
    width, height = columns * CELL, header + rows * (CELL + LABEL)
    sheet = _checkerboard(width, height)
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=13)
    if title:
        draw.rectangle((0, 0, width, header), fill="white")
        draw.text((8, 6), title, fill="black", font=ImageFont.load_default(size=15))
    for index, (sticker, label) in enumerate(zip(stickers, labels, strict=True)):
        x, y = (index % columns) * CELL, header + (index // columns) * (CELL + LABEL)
        thumb = sticker.convert("RGBA").resize((CELL - 8, CELL - 8), Image.Resampling.LANCZOS)
        sheet.paste(thumb, (x + 4, y + 4), thumb)
        draw.rectangle((x, y + CELL, x + CELL, y + CELL + LABEL), fill="white")
        draw.multiline_text((x + 4, y + CELL + 2), label, fill="black", font=font, spacing=2)
    return sheet
