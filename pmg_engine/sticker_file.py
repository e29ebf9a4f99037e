"""The files a sticker is sent as: a 512×512 WebP with transparency (Telegram's static sticker rule,
≤ 512 KB) and a PNG for Discord."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

SIDE = 512  # px: Telegram wants one side exactly 512 and neither above it
MAX_WEBP_BYTES = 512 * 1024
QUALITIES = (80, 65, 50, 35)  # tried in turn until the WebP fits; method 4 is the measured sweet spot
BACKGROUND_TOLERANCE = 24  # how far from the corner colour a pixel may be and still count as background


class StickerTooLargeError(ValueError):
    """Even the lowest quality does not fit Telegram's size limit."""


@dataclass(frozen=True)
class StickerFiles:
    webp: bytes
    png: bytes
    quality: int  # the WebP quality that fit


def cut_out_background(image: Image.Image) -> Image.Image:
    """RGB art on a plain background (what diffusion draws) -> RGBA with that background transparent:
    the region connected to each corner, within BACKGROUND_TOLERANCE of its colour, is cut away."""
    rgb = image.convert("RGB")
    marked = rgb.copy()
    sentinel = (1, 254, 3)  # a colour art almost never holds exactly
    width, height = rgb.size
    for corner in ((0, 0), (width - 1, 0), (0, height - 1), (width - 1, height - 1)):
        if marked.getpixel(corner) != sentinel:
            ImageDraw.floodfill(marked, corner, sentinel, thresh=BACKGROUND_TOLERANCE)
    background = (np.asarray(marked) == sentinel).all(axis=-1)  # (H, W)
    result = rgb.convert("RGBA")
    result.putalpha(Image.fromarray(np.where(background, 0, 255).astype(np.uint8)))
    return result


def fit_square(image: Image.Image, side: int = SIDE) -> Image.Image:
    """Scale the image to fit `side`×`side` (up or down, aspect kept) and centre it on transparency."""
    rgba = image if image.mode == "RGBA" else cut_out_background(image)
    scale = side / max(rgba.size)
    resized = rgba.resize(
        (max(1, round(rgba.width * scale)), max(1, round(rgba.height * scale))), Image.Resampling.LANCZOS
    )
    canvas = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    canvas.paste(resized, ((side - resized.width) // 2, (side - resized.height) // 2))
    return canvas


def encode_sticker(image: Image.Image) -> StickerFiles:
    """WebP (≤ 512 KB, lowering quality until it fits) and PNG of the image fitted to 512×512."""
    square = fit_square(image)
    png = io.BytesIO()
    square.save(png, format="PNG", optimize=False)
    for quality in QUALITIES:
        webp = io.BytesIO()
        square.save(webp, format="WEBP", quality=quality, method=4, exact=False)
        if webp.tell() <= MAX_WEBP_BYTES:
            return StickerFiles(webp.getvalue(), png.getvalue(), quality)
    raise StickerTooLargeError(
        f"the sticker does not fit {MAX_WEBP_BYTES // 1024} KB even at quality {QUALITIES[-1]}"
    )
