"""Offline mood stickers: plan candidates from (w_p, w_t) weight sets, describe them, and draw them (design D)."""

from __future__ import annotations

import functools
import random
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image

from pmg_engine.candidates import normalise_weights
from pmg_engine.sticker_art.faces import face_for
from pmg_engine.sticker_art.moods import ANCHORS, Cue, MoodStyle, style
from pmg_engine.sticker_art.render import (
    art_svg,
    cut_out,
    effect_lines,
    is_low_colour,
    outlined_text,
    sprite,
    tint,
)

LAYOUT = 512  # the layout below is in px of a 512×512 sticker, scaled for other sizes
CHARACTER_BOX = (106, 82, 406, 372)  # x0, y0, x1, y1; the art sits on its bottom edge (the baseline)
CAPTION_BAND = (40, 372, 472, 484)
BORDER = 11  # white cut-out outline, px
MARGIN = 16  # room the border needs at the canvas edge
TILTS = (-4.0, -2.0, 0.0, 2.0, 4.0)  # degrees; the seed picks one
JITTER = 10  # px a cue may move either way


@dataclass(frozen=True)
class Composition:
    """What one candidate sticker shows; rendering it is deterministic."""

    character: str | None  # the emoji whose art is the character ("🐱"), None = the mood alone
    character_name: str | None  # plain name used in descriptions ("cat"), None with character None
    mood: str  # one of MOODS
    preference_weight: float  # w_p normalised to [0, 1] (the larger of w_p, w_t is 1)
    target_weight: float  # w_t normalised to [0, 1]
    face: str  # how the face shows the mood: "variant" | "surgery" | "art" (unchanged art) | "mood-emoji"
    cues: tuple[str, ...]  # mood symbols / effect lines drawn, e.g. ("rain cloud", "tears", "gloom lines")
    caption: str | None  # short outlined caption, e.g. "sad..."
    seed: int  # small layout jitter (symbol positions, tilt) comes from it


def _tint_cue(look: MoodStyle) -> str:
    return f"{look.tint[0]} tint"


def _plan_one(
    character: str | None, name: str | None, mood: str, weights: tuple[float, float], seed: int
) -> Composition:
    look = style(mood)
    w_p, w_t = normalise_weights(*weights)
    captions = look.captions[seed % 2]
    every_cue = tuple(cue.name for cue in look.cues)
    if character is None or w_p == 0:  # the mood alone
        return Composition(None, None, mood, w_p, w_t, "mood-emoji", every_cue, captions, seed)
    if w_t == 0:  # pure preference: the character's own art
        return Composition(character, name, mood, w_p, w_t, "art", (), None, seed)
    face = face_for(character, mood)[0]
    if w_t > w_p:  # strong target: every cue, the caption, and a tint where the art is low-colour
        tinted = (_tint_cue(look),) if is_low_colour(art_svg(character)) else ()
        return Composition(character, name, mood, w_p, w_t, face, every_cue + tinted, captions, seed)
    if w_t == w_p:
        return Composition(character, name, mood, w_p, w_t, face, every_cue[:2], captions, seed)
    return Composition(character, name, mood, w_p, w_t, face, every_cue[:1], None, seed)


def plan_compositions(
    character: str | None,
    character_name: str | None,
    mood: str,
    weight_sets: Sequence[tuple[float, float]],
    *,
    seed: int,
) -> list[Composition]:
    """One composition per (w_p, w_t) set: w_p sets how much the character shows, w_t how strongly the mood does."""
    style(mood)  # an unknown mood fails here, even with no weight sets
    if character is not None:
        art_svg(character)  # never substitute silently: no art is an error the caller must handle
    name = character_name if character is not None else None
    return [
        _plan_one(character, name, mood, weights, seed + index) for index, weights in enumerate(weight_sets)
    ]


def _article(phrase: str) -> str:
    return f"an {phrase}" if phrase[:1].lower() in "aeiou" else f"a {phrase}"


def _listing(phrases: list[str]) -> str:
    return phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + f" and {phrases[-1]}"


def _cue(look: MoodStyle, name: str) -> Cue | None:
    return next((cue for cue in look.cues if cue.name == name), None)


def describe(composition: Composition) -> str:
    """A plain-English account of exactly what is drawn, for the text-embedding scorer."""
    look = style(composition.mood)
    name = composition.character_name or "character"
    if composition.face == "art" and not composition.cues:
        return (
            f"{_article(name)} sticker: the {name}'s own emoji art, unchanged, with no symbols and no caption"
        )
    extras = [cue.phrase for cue_name in composition.cues if (cue := _cue(look, cue_name))]
    extras += [_article(c) for c in composition.cues if c == _tint_cue(look)]
    if composition.face == "mood-emoji":
        text = f"{_article(look.word)} face emoji sticker with {look.face_looks}"
    elif composition.face == "art":
        text = f"{_article(look.word)} {name} sticker, the {name}'s own face unchanged"
    else:
        looks = face_for(composition.character or "", composition.mood)[2]
        text = f"{_article(name)} sticker, the {name} looks {look.word} with {looks}"
    if extras:
        text += f", {_listing(extras)}"
    if composition.caption:
        text += f", caption '{composition.caption}'"
    return text


def _character_svg(composition: Composition, look: MoodStyle) -> str:
    if composition.face == "mood-emoji":
        return art_svg(look.face_emoji)
    if composition.character is None:
        raise ValueError(f"face {composition.face!r} needs a character")
    svg = art_svg(composition.character)
    if composition.face != "art":
        svg = face_for(composition.character, composition.mood)[1]
    return tint(svg, look.tint[1]) if _tint_cue(look) in composition.cues else svg


@functools.lru_cache(maxsize=256)
def _tilted(svg: str, width: int, height: int, degrees: float) -> Image.Image:
    art = sprite(svg, width, height)
    return art.rotate(degrees, resample=Image.Resampling.BICUBIC, expand=True) if degrees else art


def _paste(canvas: Image.Image, image: Image.Image, left: int, top: int) -> None:
    """alpha_composite that accepts a position partly off the canvas."""
    canvas.alpha_composite(image, (max(0, left), max(0, top)), (max(0, -left), max(0, -top)))


def _draw_cue(canvas: Image.Image, cue: Cue, scale: float, shift: tuple[int, int]) -> None:
    size = canvas.width
    margin = round(MARGIN * scale)
    if cue.lines:
        _paste(canvas, effect_lines(cue.lines, size), shift[0], shift[1])
    if cue.symbol is None:
        return
    for anchor, px in cue.places:
        symbol = sprite(art_svg(cue.symbol), round(px * scale), round(px * scale))
        x, y = ANCHORS[anchor]
        left = round(x * scale) + shift[0] - symbol.width // 2
        top = round(y * scale) + shift[1] - symbol.height // 2
        left = min(max(left, margin), size - margin - symbol.width)
        top = min(max(top, margin), size - margin - symbol.height)
        canvas.alpha_composite(symbol, (left, top))


def render(composition: Composition, size: int = 512) -> Image.Image:
    """The sticker as a size×size RGBA image on a transparent background."""
    look = style(composition.mood)
    scale = size / LAYOUT
    rng = random.Random(composition.seed)
    tilt = rng.choice(TILTS) if composition.cues else 0.0
    cues = [cue for name in composition.cues if (cue := _cue(look, name))]
    shifts = [
        (round(rng.randint(-JITTER, JITTER) * scale), round(rng.randint(-JITTER, JITTER) * scale))
        for _ in cues
    ]
    canvas = Image.new("RGBA", (size, size), (0, 0, 0, 0))

    for cue, shift in zip(cues, shifts, strict=True):
        if cue.behind:
            _draw_cue(canvas, cue, scale, shift)
    x0, y0, x1, y1 = (round(v * scale) for v in CHARACTER_BOX)
    art = _tilted(_character_svg(composition, look), x1 - x0, y1 - y0, tilt)
    canvas.alpha_composite(art, ((x0 + x1 - art.width) // 2, max(0, y1 - art.height)))
    for cue, shift in zip(cues, shifts, strict=True):
        if not cue.behind:
            _draw_cue(canvas, cue, scale, shift)
    if composition.caption:
        bx0, by0, bx1, by1 = (round(v * scale) for v in CAPTION_BAND)
        text = outlined_text(composition.caption, look.colour, bx1 - bx0, round((by1 - by0) * 0.8))
        canvas.alpha_composite(text, ((size - text.width) // 2, by0 + (by1 - by0 - text.height) // 2))
    return cut_out(canvas, max(2, round(BORDER * scale)))


def plain_sticker(symbol: str, size: int = 512) -> Image.Image:
    """The emoji's own art as a sticker (trimmed, cut-out border, no mood): what a sticker set holds."""
    return render(Composition(symbol, None, "neutral", 1.0, 0.0, "art", (), None, 0), size)
