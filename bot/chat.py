"""The platform-neutral chat model: what a platform adapter hands the bot, and what it must be able to send."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from bot.identity import Platform, UserKey
from pmg_engine.behaviors import StickerSent

ImageLoader = Callable[[], Awaitable[bytes | None]]


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


class ChatPlatform(Protocol):
    """What the use cases need of a platform: text (with buttons), a sticker, a file, progress."""

    platform: Platform

    async def send_text(self, chat: str, text: str, buttons: list[Button] | None = None) -> None: ...

    async def send_sticker(self, chat: str, webp: bytes, png: bytes) -> None: ...

    async def send_file(self, chat: str, filename: str, data: bytes) -> None: ...

    async def progress(self, chat: str, text: str) -> None: ...
