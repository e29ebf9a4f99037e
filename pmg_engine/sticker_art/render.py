"""Raster helpers for stickers: OpenMoji SVG edits and trimmed sprites, the white cut-out border, outlined text."""

from __future__ import annotations

import colorsys
import functools
import io
import math
import re
import xml.etree.ElementTree as ET

import cairosvg
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from pmg_engine.sticker_art.openmoji_files import svg_path

SVG_NS = "http://www.w3.org/2000/svg"
ET.register_namespace("", SVG_NS)
SHAPES = frozenset(
    f"{{{SVG_NS}}}{tag}" for tag in ("path", "circle", "ellipse", "polygon", "polyline", "line", "rect")
)
VIEWBOX = 72.0  # every OpenMoji SVG draws in a 72×72 box
Box = tuple[float, float, float, float]  # (x0, y0, x1, y1)
FONT_FILES = ("DejaVuSans-Bold.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf", "Arial Bold.ttf")


@functools.cache
def art_svg(symbol: str) -> str:
    """The OpenMoji SVG text of `symbol`; ValueError when OpenMoji has no art for it."""
    path = svg_path(symbol)
    if path is None:
        raise ValueError(f"OpenMoji has no art for {symbol!r}")
    return path.read_text(encoding="utf-8")


def png_to_image(png: bytes) -> Image.Image:
    return Image.open(io.BytesIO(png)).convert("RGBA")


@functools.lru_cache(maxsize=512)
def drawn_box(svg: str) -> Box:
    """The area the SVG actually draws on, in viewBox units (OpenMoji art leaves uneven margins)."""
    scale = 4  # px per unit: enough to trim to a quarter unit
    image = png_to_image(cairosvg.svg2png(bytestring=svg.encode(), output_width=int(VIEWBOX * scale)))
    box = image.getchannel("A").getbbox()
    if box is None:
        raise ValueError("the SVG draws nothing")
    return (box[0] / scale, box[1] / scale, box[2] / scale, box[3] / scale)


@functools.lru_cache(maxsize=1024)
def sprite(svg: str, width: int, height: int) -> Image.Image:
    """The SVG trimmed to its drawn area and rendered as large as fits width×height px (aspect kept)."""
    x0, y0, x1, y1 = drawn_box(svg)
    scale = min(width / (x1 - x0), height / (y1 - y0))
    reframed = re.sub(r'viewBox="[^"]*"', f'viewBox="{x0} {y0} {x1 - x0} {y1 - y0}"', svg, count=1)
    png = cairosvg.svg2png(
        bytestring=reframed.encode(),
        output_width=max(1, round((x1 - x0) * scale)),
        output_height=max(1, round((y1 - y0) * scale)),
    )
    return png_to_image(png)


def _shape_leaves(root: ET.Element) -> list[tuple[ET.Element, ET.Element, list[ET.Element]]]:
    """(shape, parent, ancestors from the root down) for every drawn shape, in document order."""
    found: list[tuple[ET.Element, ET.Element, list[ET.Element]]] = []

    def walk(node: ET.Element, ancestors: list[ET.Element]) -> None:
        for child in node:
            if child.tag in SHAPES:
                found.append((child, node, ancestors))
            else:
                walk(child, [*ancestors, child])

    walk(root, [])
    return found


def _shape_svg(shape: ET.Element, ancestors: list[ET.Element]) -> str:
    """A lone shape wrapped in copies of its groups, so inherited fill/stroke still apply."""
    inner = ET.tostring(shape, encoding="unicode")
    for group in reversed(ancestors):
        attrs = " ".join(f'{k}="{v}"' for k, v in group.attrib.items() if k != "id")
        inner = f"<g {attrs}>{inner}</g>"
    return f'<svg xmlns="{SVG_NS}" viewBox="0 0 72 72">{inner}</svg>'


def _inside(box: Box, region: Box, slack: float = 0.75) -> bool:
    return (
        box[0] >= region[0] - slack
        and box[1] >= region[1] - slack
        and box[2] <= region[2] + slack
        and box[3] <= region[3] + slack
    )


@functools.lru_cache(maxsize=128)
def drop_shapes(svg: str, regions: tuple[Box, ...]) -> str:
    """The SVG without the shapes lying wholly inside any region (a face's eyes and mouth)."""
    root = ET.fromstring(svg)
    for shape, parent, ancestors in _shape_leaves(root):
        try:
            box = drawn_box(_shape_svg(shape, ancestors))
        except ValueError:
            continue  # draws nothing; leave it
        if any(_inside(box, region) for region in regions):
            parent.remove(shape)
    return ET.tostring(root, encoding="unicode")


def add_markup(svg: str, markup: str) -> str:
    """The SVG with `markup` drawn on top of the art."""
    return svg.replace("</svg>", f"{markup}</svg>")


HEX_FILL = re.compile(r'fill="(#[0-9a-fA-F]{3,6})"')


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    digits = hex_colour.lstrip("#")
    if len(digits) == 3:
        digits = "".join(ch * 2 for ch in digits)
    return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)


def is_low_colour(svg: str) -> bool:
    """Whether the art's fills are mostly white/grey (panda, robot, ghost): only such art takes a tint."""
    fills = [_rgb(c) for c in HEX_FILL.findall(svg)]
    fills = [c for c in fills if sum(c) > 60]  # outlines and pupils are not the art's colour
    if not fills:
        return True
    saturations = [colorsys.rgb_to_hsv(*(v / 255 for v in c))[1] for c in fills]
    return sum(saturations) / len(saturations) < 0.25


def tint(svg: str, colour: str) -> str:
    """The SVG with every non-dark fill multiplied by `colour`; black outlines stay black."""
    tr, tg, tb = _rgb(colour)

    def multiply(match: re.Match[str]) -> str:
        r, g, b = _rgb(match.group(1))
        if r + g + b <= 60:
            return match.group(0)
        return f'fill="#{r * tr // 255:02x}{g * tg // 255:02x}{b * tb // 255:02x}"'

    return HEX_FILL.sub(multiply, svg)


def cut_out(layer: Image.Image, border: int) -> Image.Image:
    """`layer` on a white sticker outline `border` px wide with a faint grey rim, so it reads on any chat."""
    alpha = layer.getchannel("A")
    spread = alpha.filter(ImageFilter.BoxBlur(border)).filter(ImageFilter.BoxBlur(border // 2))
    # Blurring then thresholding low grows the shape by about `border` px with smooth, rounded edges.
    white_alpha = spread.point(lambda v: max(0, min(255, (v - 6) * 40)))
    rim_alpha = spread.point(lambda v: max(0, min(70, v * 24)))
    sticker = Image.new("RGBA", layer.size, (90, 90, 100, 0))
    sticker.putalpha(rim_alpha)
    white = Image.new("RGBA", layer.size, (255, 255, 255, 0))
    white.putalpha(white_alpha)
    sticker.alpha_composite(white)
    sticker.alpha_composite(layer)
    return sticker


@functools.cache
def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """A bold sans font; Pillow's built-in one when the system has none."""
    for name in FONT_FILES:
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)


@functools.lru_cache(maxsize=64)
def outlined_text(text: str, fill: str, max_width: int, max_height: int) -> Image.Image:
    """`text` in a bold font, coloured `fill` with a dark outline, as large as fits the box (trimmed)."""
    size = max_height
    while True:
        stroke = max(2, size // 9)
        face = font(size)
        x0, y0, x1, y1 = ImageDraw.Draw(Image.new("L", (1, 1))).textbbox(
            (0, 0), text, font=face, stroke_width=stroke
        )
        if (x1 - x0 <= max_width and y1 - y0 <= max_height) or size <= 8:
            break
        size -= 2
    image = Image.new("RGBA", (int(x1 - x0), int(y1 - y0)), (0, 0, 0, 0))
    ImageDraw.Draw(image).text(
        (-x0, -y0), text, font=face, fill=fill, stroke_width=stroke, stroke_fill=(30, 30, 46, 255)
    )
    return image


def _polar_lines(cx: float, cy: float, r0: float, r1: float, degrees: list[float]) -> str:
    ends = []
    for angle in degrees:
        c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
        ends.append(f"M{cx + r0 * c:.1f},{cy + r0 * s:.1f} L{cx + r1 * c:.1f},{cy + r1 * s:.1f}")
    return " ".join(ends)


def _wave(x: float, y0: float, y1: float, amplitude: float) -> str:
    step = (y1 - y0) / 4
    turns = " ".join(
        f"Q{x + (amplitude if k % 2 else -amplitude)},{y0 + step * (k + 0.5)} {x},{y0 + step * (k + 1)}"
        for k in range(4)
    )
    return f"M{x},{y0} {turns}"


# Effect lines in the 512×512 sticker space, placed around the fixed character box: (colour, width, path).
EFFECT_LINES: dict[str, tuple[str, int, str]] = {
    "rays": ("#f4aa41", 8, _polar_lines(256, 240, 178, 212, [-160, -128, -96, -64, -32, -2])),
    "gloom": (
        "#5d6f9c",
        6,
        " ".join(f"M{x},{40 + (x * 37) % 30} l0,{70 + (x * 53) % 50}" for x in range(150, 380, 28)),
    ),
    "shake": (
        "#d22f27",
        7,
        "M62,190 l22,10 M56,226 l26,0 M62,262 l22,-10 M450,190 l-22,10 M456,226 l-26,0 M450,262 l-22,-10",
    ),
    "thread": ("#555555", 3, "M402,10 L402,96"),
    "tremble": (
        "#000000",
        6,
        "M84,180 Q64,228 84,276 M62,196 Q48,228 62,260 M428,180 Q448,228 428,276 M450,196 Q464,228 450,260",
    ),
    "burst": ("#000000", 6, _polar_lines(256, 236, 186, 236, [-170, -145, -120, -95, -70, -45, -20, 5, 175])),
    "stink": ("#5c9e31", 6, " ".join(_wave(x, 178, 236, 7) for x in (396, 420, 444))),
}


@functools.lru_cache(maxsize=64)
def effect_lines(kind: str, size: int) -> Image.Image:
    """The `kind` effect lines drawn on a transparent size×size canvas."""
    colour, width, path = EFFECT_LINES[kind]
    svg = (
        f'<svg xmlns="{SVG_NS}" viewBox="0 0 512 512"><path d="{path}" fill="none" stroke="{colour}" '
        f'stroke-width="{width}" stroke-linecap="round" stroke-linejoin="round"/></svg>'
    )
    return png_to_image(cairosvg.svg2png(bytestring=svg.encode(), output_width=size, output_height=size))
