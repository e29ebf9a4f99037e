"""How the contract suite drives the bot on one platform: as a user meets it there (a message, a command,
a pressed button, an edit, a delete), and what came back, in the memory platform's terms."""

from __future__ import annotations

from typing import Protocol

from bot.chat import IncomingMessage, IncomingSticker
from bot.chat_commands import StickerBot
from bot.identity import Platform, UserKey
from memory_platform import MemoryPlatform, Sent
from pmg_engine.behaviors import StickerSent

CHAT = "100"  # the one chat every scenario happens in
USERS = {"root": 1, "ann": 1001, "ben": 1002}  # "root" is an admin on every platform (conftest's bot)


class ChatDriver(Protocol):
    """One platform; every call returns once the bot has handled the event."""

    platform: Platform
    sticker_format: str  # what /sticker sends there: "WEBP" (Telegram, memory) or "PNG" (Discord)
    can_delete: bool  # Telegram tells bots nothing of deleted messages

    @property
    def sent(self) -> list[Sent]: ...

    async def say(self, user: str, text: str, *, sticker: str | None = None, message_id: int) -> None: ...

    async def command(self, user: str, name: str, argument: str = "") -> None: ...

    async def press(self, user: str, action: str) -> None:
        """Press the newest button with this action (as that user)."""
        ...

    async def edit(self, user: str, message_id: int, text: str) -> None: ...

    async def delete(self, user: str, message_id: int) -> None: ...


def key(platform: Platform, user: str) -> UserKey:
    return UserKey.of(platform, USERS[user])


def last(driver: ChatDriver, kind: str) -> Sent:
    return next(s for s in reversed(driver.sent) if s.kind == kind)


class MemoryDriver:
    """The use cases called directly, answers kept in memory: the reference every adapter must match."""

    platform = Platform.CONSOLE
    sticker_format = "WEBP"
    can_delete = True

    def __init__(self, bot: StickerBot) -> None:
        self.bot = bot
        self.memory = MemoryPlatform()

    @property
    def sent(self) -> list[Sent]:
        return self.memory.sent

    async def say(self, user: str, text: str, *, sticker: str | None = None, message_id: int) -> None:
        stickers = [IncomingSticker(StickerSent(sticker))] if sticker else []
        await self.bot.dispatch(self.memory, self._message(user, text, message_id, stickers))

    async def command(self, user: str, name: str, argument: str = "") -> None:
        await self.bot.dispatch(self.memory, self._message(user, f"/{name} {argument}".strip(), None))

    async def press(self, user: str, action: str) -> None:
        pressed = next(b for s in reversed(self.sent) for b in s.buttons if b.action == action)
        await self.bot.on_button(self.memory, key(self.platform, user), CHAT, pressed.action)

    async def edit(self, user: str, message_id: int, text: str) -> None:
        await self.bot.edited(self._message(user, text, message_id))

    async def delete(self, user: str, message_id: int) -> None:
        await self.bot.deleted(self.platform, CHAT, str(message_id))

    def _message(
        self, user: str, text: str, message_id: int | None, stickers: list[IncomingSticker] | None = None
    ) -> IncomingMessage:
        identifier = None if message_id is None else str(message_id)
        return IncomingMessage(key(self.platform, user), CHAT, text, identifier, stickers or [])
