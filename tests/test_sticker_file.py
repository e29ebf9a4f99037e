"""Sticker files: 512×512 WebP with transparency under Telegram's 512 KB, a PNG beside, odd images too."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from pmg_engine.sticker_file import MAX_WEBP_BYTES, SIDE, cut_out_background, encode_sticker


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def red_dot_on_white(size: tuple[int, int] = (64, 64)) -> Image.Image:
    image = Image.new("RGB", size, "white")
    ImageDraw.Draw(image).ellipse(
        (size[0] // 4, size[1] // 4, 3 * size[0] // 4, 3 * size[1] // 4), fill="red"
    )
    return image


def test_diffusion_art_on_white_gets_a_transparent_background() -> None:
    cut = cut_out_background(red_dot_on_white())
    alpha = np.asarray(cut.getchannel("A"))
    assert cut.mode == "RGBA"
    assert alpha[0, 0] == 0 and alpha[-1, -1] == 0
    assert alpha[32, 32] == 255


def test_sticker_files_follow_telegrams_static_sticker_rules() -> None:
    files = encode_sticker(red_dot_on_white())
    webp, png = decoded(files.webp), decoded(files.png)
    assert webp.format == "WEBP" and png.format == "PNG"
    assert webp.size == png.size == (SIDE, SIDE)
    assert len(files.webp) <= MAX_WEBP_BYTES
    assert webp.mode == "RGBA" and webp.getpixel((0, 0))[3] == 0  # transparent corner
    assert webp.getpixel((SIDE // 2, SIDE // 2))[:3][0] > 200  # the red dot, centred


@pytest.mark.parametrize(
    "odd",
    [
        Image.new("RGB", (1, 1), "blue"),
        Image.new("RGBA", (2000, 10), (0, 255, 0, 255)),
        Image.new("P", (300, 100)),
        Image.new("LA", (90, 700)),
    ],
    ids=["1px", "very-wide", "palette", "grey-alpha"],
)
def test_odd_images_become_square_512_stickers(odd: Image.Image) -> None:
    files = encode_sticker(odd)
    assert decoded(files.webp).size == (SIDE, SIDE)


def test_noise_still_fits_the_size_limit() -> None:
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (512, 512, 4), dtype=np.uint8), "RGBA")
    files = encode_sticker(noise)
    assert len(files.webp) <= MAX_WEBP_BYTES
    assert files.quality in (80, 65, 50, 35)
