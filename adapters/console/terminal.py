"""`pmg chat`: type messages, send emoji as sticker uses, press buttons by number, /sticker writes a file."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import emoji
from rich.console import Console

from bot.chat import Button, IncomingMessage, IncomingSticker, StickerPacks, plain_words
from bot.chat_commands import StickerBot
from bot.identity import Platform, UserKey
from bot.user_files import UserFiles
from pmg_engine.behaviors import StickerSent, emoji_name

CHAT = "console"


def emoji_image(symbol: str) -> Callable[[], Awaitable[bytes | None]]:
    """A sticker image for an emoji typed in the terminal: its OpenMoji art, as a platform would send it."""

    async def render() -> bytes | None:
        from pmg_engine.sticker_art.composer import plain_sticker
        from pmg_engine.sticker_art.openmoji_files import has_art
        from pmg_engine.sticker_file import encode_sticker

        if not has_art(symbol):
            return None
        return await asyncio.to_thread(lambda: encode_sticker(plain_sticker(symbol)).webp)

    return render


class ConsolePlatform:
    """Prints what the bot says; stickers and files go to the user's own folder (owner-only, never
    overwritten, removed by /forget) and their paths are printed."""

    platform = Platform.CONSOLE
    packs: StickerPacks | None = None  # personal packs are Telegram's

    def __init__(self, console: Console, files: UserFiles, user: UserKey) -> None:
        self.console = console
        self.files = files
        self.user = user
        self.buttons: list[Button] = []

    async def send_text(self, chat: str, text: str, buttons: list[Button] | None = None) -> None:
        self.console.print(f"[bold magenta]bot:[/] {text}", highlight=False)
        self._offer(buttons)

    async def send_sticker(
        self, chat: str, webp: bytes, png: bytes, buttons: list[Button] | None = None
    ) -> str | None:
        path = self.files.write_sticker(self.user, webp, png)
        self.console.print(f"[bold magenta]bot:[/] (sticker) {path}", highlight=False)
        self._offer(buttons)
        return None

    async def send_image(
        self, chat: str, png: bytes, caption: str, buttons: list[Button] | None = None
    ) -> None:
        path = self.files.write(self.user, "candidates", ".png", png)
        self.console.print(f"[bold magenta]bot:[/] {caption} (picture) {path}", highlight=False)
        self._offer(buttons)

    def _offer(self, buttons: list[Button] | None) -> None:
        """The buttons under the last answer, pressed by typing their number."""
        self.buttons = list(buttons or [])
        for number, button in enumerate(self.buttons, start=1):
            self.console.print(f"  [{number}] {button.label}", highlight=False)

    async def send_file(self, chat: str, filename: str, data: bytes) -> None:
        path = self.files.write(self.user, Path(filename).stem, Path(filename).suffix, data)
        self.console.print(f"[bold magenta]bot:[/] (file) {path}", highlight=False)

    async def progress(self, chat: str, text: str) -> None:
        self.console.print(f"[dim]… {text}[/]", highlight=False)


def parse_line(user: UserKey, line: str) -> IncomingMessage:
    """Text, plus every emoji in it as a sticker use (the terminal has no stickers of its own)."""
    found = [match["emoji"] for match in emoji.emoji_list(line)]
    text = plain_words(line) if found and not line.startswith("/") else line  # a command keeps its emoji
    stickers = [IncomingSticker(StickerSent(e, emoji_name(e)), emoji_image(e)) for e in found]
    return IncomingMessage(user, CHAT, text, None, stickers)  # the terminal has no message ids


async def chat_loop(
    bot: StickerBot, platform: ConsolePlatform, user: UserKey, read: Callable[[], Awaitable[str | None]]
) -> None:
    """Until end of input or /quit: a number presses a shown button, anything else is a message."""
    while True:
        line = await read()
        if line is None or line.strip() in {"/quit", "/exit"}:
            return
        line = line.strip()
        if not line:
            continue
        if line.isdigit() and platform.buttons and 1 <= int(line) <= len(platform.buttons):
            button = platform.buttons[int(line) - 1]
            platform.buttons = []
            await bot.on_button(platform, user, CHAT, button.action)
            continue
        await bot.dispatch(platform, parse_line(user, line))
