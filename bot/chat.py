"""The platform-neutral chat model: what a platform adapter hands the bot, and what it must be able to send."""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

import emoji
from PIL import Image

from bot.identity import Platform, UserKey
from pmg_engine.behaviors import StickerSent

ImageLoader = Callable[[], Awaitable[bytes | None]]
MAX_STICKER_SIDE = 4096  # platform stickers are 512 px; anything far larger is not a sticker
MAX_STICKER_BYTES = 1024 * 1024  # static stickers are ≤ 512 KB on Telegram and Discord; more is not one
# What sticker pictures come as; retraining decodes them later, so no other decoder ever sees user bytes.
STICKER_FORMATS = ("PNG", "WEBP", "GIF", "JPEG")


def plain_words(text: str) -> str:
    """A message's words without its emoji: the emoji are recorded as sticker uses instead."""
    return re.sub(r"[ \t]{2,}", " ", emoji.replace_emoji(text, "")).strip()


def image_problem(data: bytes) -> str | None:
    """Why `data` is no usable sticker image (not a PNG/WebP/GIF/JPEG, truncated, absurdly large), else None."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=STICKER_FORMATS) as image:
                size = image.size
                image.verify()
    except Exception as error:  # PIL raises many kinds for bad input; every one means "not an image"
        return f"not a readable image ({type(error).__name__})"
    if max(size) > MAX_STICKER_SIDE:
        return f"{size[0]}×{size[1]} px is too large for a sticker"
    return None


@dataclass(frozen=True)
class IncomingSticker:
    """A sticker or emoji in a message; its image is fetched only when the user consented to training."""

    sticker: StickerSent
    image: ImageLoader | None = None


@dataclass(frozen=True)
class IncomingMessage:
    """One message as any platform delivers it."""

    user: UserKey
    chat: str
    text: str = ""
    message_id: str | None = None
    stickers: list[IncomingSticker] = field(default_factory=list)
    display_name: str | None = None


@dataclass(frozen=True)
class Button:
    """A choice under a message; pressing it calls StickerBot.on_button with `action`."""

    label: str
    action: str


def button_action(verb: str, choice: str, owner: UserKey) -> str:
    """`verb:choice:owner id`: every button names whom it was made for (Telegram allows 64 bytes)."""
    return f"{verb}:{choice}:{owner.external_id}"


def parse_action(action: str) -> tuple[str, str, str | None]:
    """(verb, choice, owner id); owner None for a button made before buttons named their owner."""
    verb, choice, owner = [*action.split(":", 2), None, None][:3]
    return verb or "", choice or "", owner


@dataclass(frozen=True)
class PackResult:
    """Where a sticker went: the pack's name and the words that point the user to it; `dropped`: a
    pack of ours the user deleted; `personal`: the user's own pack (kept in the store, linked by
    /mypack, deleted by /forget), not a place they share (a Discord server's stickers)."""

    name: str
    where: str
    dropped: str | None = None
    personal: bool = True


class PackProblem(Exception):
    """A pack could not take the sticker; the message is for the user."""


class StickerPacks(Protocol):
    """Where a platform keeps stickers for later: a user's own packs (Telegram's sticker sets, made by
    the bot) or a server's stickers (Discord's, where the user and the bot may manage them)."""

    label: str  # the button under a sticker

    def link(self, name: str) -> str: ...

    async def add(
        self, user: UserKey, sticker: bytes, emoji: str, keywords: list[str], packs: list[str]
    ) -> PackResult:
        """Add to the newest of `packs` (the user's, oldest first), or start a new one when there is
        none, it is full, or the user deleted it. Raises PackProblem with what the user can do."""
        ...

    async def delete(self, names: list[str]) -> None: ...


class ChatPlatform(Protocol):
    """What the use cases need of a platform: text (with buttons), a sticker, a file, progress. An
    adapter makes one per incoming event, so it knows whom it answers."""

    platform: Platform
    packs: StickerPacks | None  # None: the platform has no personal packs

    async def send_text(self, chat: str, text: str, buttons: list[Button] | None = None) -> None: ...

    async def send_sticker(
        self, chat: str, webp: bytes, png: bytes, buttons: list[Button] | None = None
    ) -> str | None:
        """Returns the platform's id of the sticker as sent, where it keeps one (Telegram's file_id)."""
        ...

    async def send_image(
        self, chat: str, png: bytes, caption: str, buttons: list[Button] | None = None
    ) -> None:
        """A picture (the 🎨 Choose contact sheet) with a caption and buttons in one row."""
        ...

    async def send_file(self, chat: str, filename: str, data: bytes) -> None:
        """Only the user who asked may see it (a private chat, an ephemeral reply)."""
        ...

    async def progress(self, chat: str, text: str) -> None: ...
