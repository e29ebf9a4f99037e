"""An in-memory chat platform: what the bot sent, kept in order, for the use-case tests (and, later,
the contract every adapter passes)."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.chat import Button, StickerPacks
from bot.identity import Platform


@dataclass
class Sent:
    kind: str  # text | sticker | image | file | progress
    chat: str
    text: str = ""
    buttons: list[Button] = field(default_factory=list)
    data: bytes = b""


class MemoryPlatform:
    platform = Platform.CONSOLE
    packs: StickerPacks | None = None  # personal packs are Telegram's

    def __init__(self) -> None:
        self.sent: list[Sent] = []

    async def send_text(self, chat: str, text: str, buttons: list[Button] | None = None) -> None:
        self.sent.append(Sent("text", chat, text, list(buttons or [])))

    async def send_sticker(
        self, chat: str, webp: bytes, png: bytes, buttons: list[Button] | None = None
    ) -> str | None:
        self.sent.append(Sent("sticker", chat, buttons=list(buttons or []), data=webp))
        return None

    async def send_image(
        self, chat: str, png: bytes, caption: str, buttons: list[Button] | None = None
    ) -> None:
        self.sent.append(Sent("image", chat, caption, list(buttons or []), data=png))

    async def send_file(self, chat: str, filename: str, data: bytes) -> None:
        self.sent.append(Sent("file", chat, filename, data=data))

    async def progress(self, chat: str, text: str) -> None:
        self.sent.append(Sent("progress", chat, text))

    def sent_of(self, kind: str) -> list[Sent]:
        return [s for s in self.sent if s.kind == kind]

    def last(self, kind: str) -> Sent:
        return next(s for s in reversed(self.sent) if s.kind == kind)
