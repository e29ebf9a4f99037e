"""What each mood looks like on a sticker: its face emoji, caption, colours and the cues that back the face up."""

from __future__ import annotations

from dataclasses import dataclass

# Anchors in a 512×512 sticker, around the fixed character box (x 106-406, y 82-372).
ANCHORS: dict[str, tuple[int, int]] = {
    "top": (256, 72),
    "top-left": (110, 100),
    "top-right": (402, 100),
    "left": (90, 230),
    "right": (422, 230),
    "lower-left": (96, 312),
    "lower-right": (414, 300),
}


@dataclass(frozen=True)
class Cue:
    """One mood cue that does not depend on the face: emoji symbols and/or drawn effect lines."""

    name: str  # as listed in Composition.cues: "rain cloud"
    phrase: str  # as described: "a rain cloud"
    symbol: str | None = None  # the emoji drawn at each place
    places: tuple[tuple[str, int], ...] = ()  # (anchor, size in px at 512)
    lines: str | None = None  # effect lines drawn with it (render.EFFECT_LINES)
    behind: bool = False  # drawn behind the character (gloom, burst)


@dataclass(frozen=True)
class MoodStyle:
    word: str  # the mood as an adjective, also the first target keyword: "sad"
    face_emoji: str  # the mood's own face, drawn when the sticker shows the mood alone
    face_looks: str  # what that face shows
    captions: tuple[str, str]  # two wordings; the seed picks one
    colour: str  # caption fill
    tint: tuple[str, str]  # (name, multiply colour) for low-colour art at a strong target
    cues: tuple[Cue, ...]  # most telling first: a weak target shows only the first


STYLES: dict[str, MoodStyle] = {
    "joy": MoodStyle(
        "joyful",
        "😄",
        "a big smile and smiling eyes",
        ("YAY!", "YAY~"),
        "#f7c325",
        ("warm yellow", "#fff0a0"),
        (
            Cue("sparkles", "sparkles", "✨", (("top-left", 96), ("top-right", 64))),
            Cue("music note", "a music note", "🎵", (("right", 72),)),
            Cue("happy rays", "happy rays", lines="rays", behind=True),
        ),
    ),
    "sadness": MoodStyle(
        "sad",
        "😢",
        "teary eyes and a frown",
        ("sad...", "so sad..."),
        "#3b7bd6",
        ("blue", "#a9c6f5"),
        (
            Cue("rain cloud", "a rain cloud", "🌧️", (("top", 124),)),
            Cue("tears", "tear drops", "💧", (("lower-left", 44), ("lower-right", 40))),
            Cue("gloom lines", "gloom lines", lines="gloom", behind=True),
        ),
    ),
    "anger": MoodStyle(
        "angry",
        "😠",
        "furrowed brows and a frown",
        ("GRRR!", "ARGH!"),
        "#d22f27",
        ("red", "#f5a89a"),
        (
            Cue("anger mark", "an anger mark", "💢", (("top-right", 100),)),
            Cue("steam puff", "a steam puff", "💨", (("left", 92),)),
            Cue("shake lines", "shake lines", lines="shake"),
        ),
    ),
    "fear": MoodStyle(
        "scared",
        "😨",
        "wide eyes and a worried open mouth",
        ("EEK!", "HELP!"),
        "#7b52c9",
        ("purple", "#cdbff5"),
        (
            Cue("spider", "a spider on a thread", "🕷️", (("top-right", 64),), lines="thread"),
            Cue("sweat drops", "sweat drops", "💦", (("top-left", 84),)),
            Cue("tremble lines", "trembling lines", lines="tremble"),
        ),
    ),
    "surprise": MoodStyle(
        "surprised",
        "😮",
        "an open mouth and raised eyebrows",
        ("WHAT?!", "WOW!"),
        "#f08c1b",
        ("orange", "#ffdcaa"),
        (
            Cue("interrobang", "an interrobang", "⁉️", (("top-right", 100),)),
            Cue("burst lines", "burst lines", lines="burst", behind=True),
            Cue("exclamation mark", "an exclamation mark", "❗", (("top-left", 64),)),
        ),
    ),
    "disgust": MoodStyle(
        "disgusted",
        "🤢",
        "a green face and a queasy mouth",
        ("EWW", "YUCK"),
        "#4a9a2a",
        ("green", "#bfe8a0"),
        (
            Cue(
                "smelly sock", "a smelly sock with stink lines", "🧦", (("lower-right", 116),), lines="stink"
            ),
            Cue("fly", "a buzzing fly", "🪰", (("top-right", 56),)),
        ),
    ),
    "love": MoodStyle(
        "loving",
        "😍",
        "heart eyes and a big smile",
        ("LOVE U", "LOVE!"),
        "#e8508a",
        ("pink", "#ffc4d6"),
        (
            Cue("hearts", "floating hearts", "💕", (("top-right", 100),)),
            Cue("sparkling heart", "a sparkling heart", "💖", (("left", 64),)),
            Cue("red heart", "a red heart", "❤️", (("top-left", 48),)),
        ),
    ),
    "tired": MoodStyle(
        "tired",
        "😴",
        "sleepy closed eyes and an open mouth",
        ("so tired", "zzz..."),
        "#5c6b8a",
        ("grey", "#d8d4cc"),
        (
            Cue("z z z", "z z z", "💤", (("top-right", 96),)),
            Cue("moon", "a crescent moon", "🌙", (("top-left", 64),)),
        ),
    ),
    "neutral": MoodStyle(
        "calm",
        "🙂",
        "a small smile and a relaxed face",
        ("ok.", "hi."),
        "#8f96a3",
        ("light grey", "#eeeeee"),
        (
            Cue("speech bubble", "a small speech bubble", "💬", (("top-right", 72),)),
            Cue("waving hand", "a waving hand", "👋", (("lower-left", 72),)),
        ),
    ),
}


def style(mood: str) -> MoodStyle:
    """The look of `mood`; ValueError naming the valid moods otherwise."""
    if mood not in STYLES:
        raise ValueError(f"unknown mood {mood!r}; valid moods: {', '.join(STYLES)}")
    return STYLES[mood]
