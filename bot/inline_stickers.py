"""Inline mode (`@bot <text>` in any chat): the user's own recent stickers, ranked for the text, at once.

No sticker is drawn here (an inline answer has seconds, a sticker takes longer): the text is matched
against what each sticker was made from — its mood and its preference and target keywords — and ties
go to the newer one. A button opens the private chat with `/sticker <text>` to draw a new one; its
start parameter carries the text (Telegram allows 64 characters of [A-Za-z0-9_-])."""

from __future__ import annotations

import base64
import binascii
import re

from bot.behavior import SentSticker
from pmg_engine.mood_data import MOOD_EMOJI

MAX_RESULTS = 20
START_PREFIX = "s_"
START_TEXT_BYTES = 45  # base64 of 45 bytes is 60 characters: with the prefix, within Telegram's 64
# A few everyday words per mood, so "so happy" finds a joyful sticker whose keywords say "big smile".
MOOD_WORDS = {
    "joy": "happy glad yay great won win joy fun lol haha smile",
    "sadness": "sad cry crying miss lost sorry down upset tears",
    "anger": "angry mad furious annoyed hate rage ugh",
    "fear": "scared afraid fear nervous anxious terrified",
    "surprise": "wow what omg surprised shocked whoa",
    "disgust": "gross ew eww disgusting yuck",
    "love": "love heart cute miss hug kiss darling",
    "tired": "tired sleepy sleep exhausted yawn bed",
    "neutral": "ok okay sure fine",
}


def _words(text: str) -> set[str]:
    return {word[:5] for word in re.findall(r"\w+", text.lower()) if len(word) > 1}


def rank(stickers: list[SentSticker], text: str) -> list[SentSticker]:
    """The stickers best matching `text` first (newest first among equals); all of them for no text."""
    wanted = _words(text)
    emoji = {symbol for symbol in MOOD_EMOJI.values() if symbol in text}

    def score(position: int) -> tuple[int, int]:
        sticker = stickers[position]
        mood = sticker.mood or "neutral"
        said = _words(" ".join(sticker.keywords)) | _words(f"{mood} {MOOD_WORDS.get(mood, '')}")
        return len(wanted & said) + 2 * (MOOD_EMOJI.get(mood) in emoji), -position

    order = sorted(range(len(stickers)), key=score, reverse=True)
    return [stickers[i] for i in order][:MAX_RESULTS]


def start_parameter(text: str) -> str:
    """`/start <this>` opens the private chat asking for a sticker for `text` (cut to fit)."""
    data = text.strip().encode()[:START_TEXT_BYTES]
    while data:  # a cut may split a character: drop its leftover bytes
        try:
            data.decode()
            break
        except UnicodeDecodeError:
            data = data[:-1]
    return START_PREFIX + base64.urlsafe_b64encode(data).decode().rstrip("=")


def text_of_start(parameter: str) -> str | None:
    """The text a start parameter carries; None for any other /start argument."""
    if not parameter.startswith(START_PREFIX):
        return None
    encoded = parameter.removeprefix(START_PREFIX)
    try:
        return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode().strip() or None
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
