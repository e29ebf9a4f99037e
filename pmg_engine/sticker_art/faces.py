"""How a character's face shows a mood: a Unicode expression variant, or "face surgery" on its own SVG."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from pmg_engine.sticker_art.render import Box, add_markup, art_svg, drop_shapes

Point = tuple[float, float]


@dataclass(frozen=True)
class Face:
    """Where a character's face sits in its 72×72 OpenMoji art; found by reading the SVG, checked by eye."""

    eyes: tuple[Point, Point]  # left and right eye centres
    eye_r: float  # the original eyes lie within eye ± eye_r and are dropped; 0 keeps them (skull sockets)
    mouth: tuple[float, float, float] | None  # (x, y, width) of the new mouth; None keeps the art's (a beak)
    drop: tuple[Box, ...] = ()  # boxes holding the original mouth/brows, dropped before redrawing
    scale: float = 1.0  # feature size; 1 suits eyes about 18 units apart
    eye_ink: str = "#000"  # white where the eyes sit on dark patches (panda, skull)
    extra: str = ""  # markup the dropped shapes used to provide (the dog's chin)


CAPS = 'stroke-linecap="round" stroke-linejoin="round"'
LINE = f'fill="none" {CAPS}'
CHIN = f'<path {LINE} stroke="#000" stroke-width="2" d="M27.2,54.6 Q36,60.5 45,54.7"/>'

FACES: dict[str, Face] = {
    "🐱": Face(((26.8, 38.1), (45.1, 38.1)), 3.5, (36, 54, 12), ((29, 49, 43, 58.5),)),
    "🐶": Face(((27.8, 29), (46, 29)), 2.5, (36.2, 49, 11), ((24, 41.5, 48.5, 61.5),), extra=CHIN),
    "🐼": Face(((28.6, 39), (43.3, 39)), 2.2, (36, 54, 11), ((26, 47.5, 46, 56.5),), 0.85, "#fff"),
    "🐸": Face(((22.5, 23.5), (49.5, 23.5)), 3.4, (36, 50.5, 18), ((20, 46, 53, 56),), 1.3),
    "🤖": Face(((27.3, 29), (44.9, 29)), 4, (36, 43.5, 16), ((22, 38, 50, 49),), 1.1),
    "☕": Face(((29, 39), (43, 39)), 0, (36, 44.5, 7), (), 0.75),
    "🐻": Face(((28.6, 37), (43.3, 37)), 2.2, (36, 57.5, 9), ((28, 52.5, 44.5, 61.5),), 0.85),
    "🐰": Face(((26.9, 39.9), (45.1, 39.9)), 3, (36, 60, 8), ((29, 57, 42.5, 63),), 0.9, "#fff"),
    "🦊": Face(((25.9, 40.2), (46.1, 40.2)), 3.5, (36, 58.5, 7), ((30.5, 52.5, 41.5, 63.5),), 0.95),
    "🐷": Face(((26.1, 36.1), (46.1, 36.1)), 2.4, (36, 59.5, 9), ((29, 57.5, 43, 63),), 0.95),
    "🐵": Face(
        ((27.6, 29.6), (43.3, 29.9)), 2.4, (36, 52.5, 11), ((21.5, 23.5, 50, 30), (26, 50, 46, 55.5)), 0.8
    ),
    "🐯": Face(((28.3, 36.1), (45.1, 36.1)), 2.8, (36, 60, 8), ((28, 57.5, 44.5, 64),), 0.85),
    "🐹": Face(((27.9, 32.1), (44.4, 32.1)), 3.3, (36, 51, 8), ((29.5, 45, 43, 54),), 0.9),
    "🐭": Face(((26.9, 38.6), (47.1, 38.6)), 3.3, (37, 57.5, 7), ((35, 53, 39, 59),), 0.95),
    "🐔": Face(((27, 39), (45, 39)), 2.2, None),
    "🦉": Face(((35.6, 21), (42.4, 21)), 2.6, None, scale=0.5),
    "👻": Face(((33.1, 23.2), (39.9, 23.2)), 4.3, (36.5, 30.5, 5), ((33, 26.5, 41, 34),), 0.55),
    "👽": Face(((26.4, 40.1), (45.1, 40.1)), 0, (35.5, 54.5, 8), ((29, 52, 42, 57.5),), 0.9, "#fff"),
    "💀": Face(((28, 40.8), (44.1, 40.8)), 0, None, scale=0.9, eye_ink="#fff"),
}

# Unicode expression variants beat surgery: drawn by the art's own designers. (variant, what its face shows)
VARIANTS: dict[str, dict[str, tuple[str, str]]] = {
    "🐱": {
        "joy": ("😸", "a big grin and smiling closed eyes"),
        "sadness": ("😿", "teary eyes, a tear drop and a frown"),
        "anger": ("😾", "furrowed brows, narrowed eyes and a pout"),
        "fear": ("🙀", "wide eyes, an open mouth and hands on its cheeks"),
        "surprise": ("🙀", "wide eyes, an open mouth and hands on its cheeks"),
        "love": ("😻", "heart eyes and a big smile"),
    },
    "🐵": {
        "fear": ("🙈", "its hands covering its eyes, hiding"),
        "surprise": ("🙊", "its hands over its mouth"),
    },
}

# What the redrawn face shows, as (eyes and brows, mouth); describe() says only what is drawn.
SURGERY_LOOKS: dict[str, tuple[str, str]] = {
    "joy": ("happy closed eyes", "a big smile"),
    "sadness": ("teary eyes and droopy brows", "a frown"),
    "anger": ("furrowed brows", "gritted teeth"),
    "fear": ("wide eyes and worried brows", "a trembling wavy mouth"),
    "surprise": ("raised eyebrows and round eyes", "an open mouth"),
    "disgust": ("a wrinkled nose and squinting eyes", "its tongue out"),
    "love": ("heart eyes and blushing cheeks", "a small smile"),
    "tired": ("sleepy half-closed eyes", "a yawning mouth"),
    "neutral": ("a relaxed face", "a small smile"),
}
RED = "#ea5a47"
DARK = "#3f3f3f"


def _stroke(ink: str, width: float) -> str:
    return f'{CAPS} stroke="{ink}" stroke-width="{width:.2f}"'


def _line(ink: str, width: float) -> str:
    return f'fill="none" {_stroke(ink, width)}'


def _eye(mood: str, x: float, y: float, side: int, s: float, ink: str) -> str:
    """One eye and its brow; `side` is -1 for the left eye, +1 for the right (outer direction)."""
    line = _line(ink, max(1.3, 2 * s))
    dot = f'<ellipse cx="{x}" cy="{y + 0.4 * s}" rx="{1.6 * s}" ry="{2.1 * s}" fill="{ink}"/>'
    outer, inner = x + side * 3.3 * s, x - side * 2.8 * s
    if mood == "joy":
        return f'<path {line} d="M{x - 3 * s},{y + s} Q{x},{y - 3.5 * s} {x + 3 * s},{y + s}"/>'
    if mood == "sadness":
        tear = ""
        if side < 0:
            tx, ty, r = x - 0.4 * s, y + 2.8 * s, 1.7 * s
            tear = (
                f'<path fill="#92d3f5" {_stroke("#000", 0.9 * s)} d="M{tx},{ty} '
                f"C{tx + 0.4 * s},{ty + 1.4 * s} {tx + r},{ty + 2.2 * s} {tx + r},{ty + 3.3 * s} "
                f'A{r},{r} 0 1 1 {tx - r},{ty + 3.3 * s} C{tx - r},{ty + 2.2 * s} {tx - 0.4 * s},{ty + 1.4 * s} {tx},{ty}Z"/>'
            )
        return f'{dot}<path {line} d="M{outer},{y - 3 * s} L{inner},{y - 5.2 * s}"/>{tear}'
    if mood == "anger":
        brow = _line(ink, max(1.6, 2.6 * s))
        return f'{dot}<path {brow} d="M{outer},{y - 5 * s} L{inner},{y - 2.2 * s}"/>'
    if mood in ("fear", "surprise"):
        r, pupil = (3.1 * s, 1.1 * s) if mood == "fear" else (2.7 * s, 1.5 * s)
        eyeball = f'<circle cx="{x}" cy="{y}" r="{r}" fill="#fff" {_stroke("#000", 1.2 * s)}/>'
        eyeball += f'<circle cx="{x}" cy="{y + 0.3 * s}" r="{pupil}" fill="#000"/>'
        if mood == "fear":
            return eyeball + f'<path {line} d="M{outer},{y - 4.6 * s} L{inner},{y - 6.6 * s}"/>'
        return (
            eyeball
            + f'<path {line} d="M{x - 3 * s},{y - 5.2 * s} Q{x},{y - 8 * s} {x + 3 * s},{y - 5.2 * s}"/>'
        )
    if mood == "disgust":
        return f'<path {line} d="M{outer},{y - 2.6 * s} L{inner},{y} L{outer},{y + 2.6 * s}"/>'
    if mood == "love":
        h = 1.15 * s
        heart = (
            f'<path fill="#d22f27" {_stroke("#000", 0.8 * s)} d="M{x},{y + 3 * h} '
            f"C{x - 4.6 * h},{y - 0.2 * h} {x - 2.6 * h},{y - 4.2 * h} {x},{y - 1.6 * h} "
            f'C{x + 2.6 * h},{y - 4.2 * h} {x + 4.6 * h},{y - 0.2 * h} {x},{y + 3 * h}Z"/>'
        )
        blush = f'<ellipse cx="{x + side * 2.2 * s}" cy="{y + 5 * s}" rx="{2.6 * s}" ry="{1.3 * s}" fill="#ff7f99" opacity="0.75"/>'
        return blush + heart
    if mood == "tired":
        lid = f'<path {line} d="M{x - 3.2 * s},{y} L{x + 3.2 * s},{y}"/>'
        return lid + f'<path fill="{ink}" d="M{x - 2 * s},{y} A{2 * s},{1.6 * s} 0 0 0 {x + 2 * s},{y}Z"/>'
    return dot  # neutral


def _mouth(mood: str, x: float, y: float, width: float, s: float) -> str:
    line = _line("#000", max(1.3, 2 * s))
    hw = width / 2
    if mood == "joy":
        top = y - 1.5 * s
        return (
            f'<path fill="{RED}" {_stroke("#000", max(1.2, 1.8 * s))} '
            f'd="M{x - hw},{top} L{x + hw},{top} A{hw},{hw * 0.8} 0 0 1 {x - hw},{top}Z"/>'
        )
    if mood == "sadness":
        return f'<path {line} d="M{x - hw * 0.7},{y + 1.5 * s} Q{x},{y - 2.5 * s} {x + hw * 0.7},{y + 1.5 * s}"/>'
    if mood == "anger":
        w, h = hw * 1.5, 4.2 * s
        x0, y0 = x - w / 2, y - h / 2
        teeth = " ".join(f"M{x0 + w * k / 4},{y0} L{x0 + w * k / 4},{y0 + h}" for k in (1, 2, 3))
        return (
            f'<rect x="{x0}" y="{y0}" width="{w}" height="{h}" rx="{1.4 * s}" fill="#fff" '
            f"{_stroke('#000', max(1.1, 1.6 * s))}/>"
            f'<path {_line("#000", max(0.8, 1.1 * s))} d="M{x0},{y} L{x0 + w},{y} {teeth}"/>'
        )
    if mood == "fear":
        step = hw * 1.4 / 4
        x0 = x - hw * 0.7
        waves = " ".join(
            f"Q{x0 + step * (k + 0.5)},{y + (1.6 if k % 2 else -1.6) * s} {x0 + step * (k + 1)},{y}"
            for k in range(4)
        )
        return f'<path {line} d="M{x0},{y} {waves}"/>'
    if mood == "surprise":
        return f'<ellipse cx="{x}" cy="{y}" rx="{2.2 * s}" ry="{3 * s}" fill="{DARK}" {_stroke("#000", 1.4 * s)}/>'
    if mood == "disgust":
        a, b = x + hw * 0.05, x + hw * 0.6
        tongue = (
            f'<path fill="{RED}" {_stroke("#000", max(0.9, 1.2 * s))} '
            f'd="M{a},{y} L{a},{y + 2 * s} A{(b - a) / 2},{(b - a) / 2} 0 0 0 {b},{y + 2 * s} L{b},{y}Z"/>'
        )
        lips = f"M{x - hw * 0.7},{y} Q{x - hw * 0.35},{y - 1.6 * s} {x},{y} Q{x + hw * 0.35},{y + 1.6 * s} {x + hw * 0.7},{y}"
        return tongue + f'<path {line} d="{lips}"/>'
    if mood == "love":
        return (
            f'<path {line} d="M{x - hw * 0.6},{y - 0.5 * s} Q{x},{y + 3 * s} {x + hw * 0.6},{y - 0.5 * s}"/>'
        )
    if mood == "tired":
        return f'<ellipse cx="{x}" cy="{y}" rx="{1.8 * s}" ry="{2.4 * s}" fill="{DARK}" {_stroke("#000", 1.2 * s)}/>'
    return f'<path {line} d="M{x - hw * 0.45},{y} Q{x},{y + 1.6 * s} {x + hw * 0.45},{y}"/>'  # neutral


def _wrinkles(face: Face) -> str:
    """Disgust's wrinkled nose: little arcs between the eyes."""
    (lx, ly), (rx, ry) = face.eyes
    x, y, s = (lx + rx) / 2, (ly + ry) / 2 + 1.5 * face.scale, face.scale
    arcs = " ".join(
        f"M{x - 1.6 * s},{y + k * s} Q{x},{y - s + k * s} {x + 1.6 * s},{y + k * s}" for k in (0, 1.6)
    )
    return f'<path {_line(face.eye_ink, max(0.9, 1.1 * s))} d="{arcs}"/>'


@functools.lru_cache(maxsize=256)
def surgery_svg(symbol: str, mood: str) -> str:
    """`symbol`'s art with its eyes, brows and mouth redrawn to show `mood`; KeyError without face data."""
    face = FACES[symbol]
    eye_boxes = tuple((x - face.eye_r, y - face.eye_r, x + face.eye_r, y + face.eye_r) for x, y in face.eyes)
    regions = face.drop + (eye_boxes if face.eye_r else ())
    svg = drop_shapes(art_svg(symbol), regions) if regions else art_svg(symbol)
    s = face.scale
    markup = face.extra
    markup += "".join(
        _eye(mood, x, y, side, s, face.eye_ink) for (x, y), side in zip(face.eyes, (-1, 1), strict=True)
    )
    if mood == "disgust":
        markup += _wrinkles(face)
    if face.mouth is not None:
        markup += _mouth(mood, *face.mouth, s)
    return add_markup(svg, f"<g>{markup}</g>")


def face_for(symbol: str, mood: str) -> tuple[str, str, str]:
    """(face kind, SVG, what the face shows) for `symbol` in `mood`: variant, else surgery, else the art as is."""
    if mood in VARIANTS.get(symbol, {}):
        variant, looks = VARIANTS[symbol][mood]
        return "variant", art_svg(variant), looks
    if symbol in FACES:
        eyes, mouth = SURGERY_LOOKS[mood]
        looks = eyes if FACES[symbol].mouth is None else f"{eyes} and {mouth}"
        return "surgery", surgery_svg(symbol, mood), looks
    return "art", art_svg(symbol), ""
