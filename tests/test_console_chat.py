"""`pmg chat`'s adapter: typed lines become messages and sticker uses, numbers press buttons, a sticker
lands as a file whose path is printed."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image
from rich.console import Console

from adapters.console.terminal import ConsolePlatform, chat_loop, parse_line
from adapters.store.behavior_store import SqliteBehaviorStore
from bot.chat_commands import StickerBot
from bot.identity import UserKey

ZOE = UserKey.of("console", "zoe")


def test_emoji_in_a_line_are_sticker_uses_and_the_rest_is_text() -> None:
    message = parse_line(ZOE, "hi there 🐸🐸")
    assert message.text == "hi there"
    assert [s.sticker.emoji for s in message.stickers] == ["🐸", "🐸"]
    assert message.stickers[0].sticker.name == "frog"
    assert parse_line(ZOE, "plain words").stickers == []


async def test_a_terminal_session_consents_chats_and_gets_a_sticker_file(
    bot: StickerBot, store: SqliteBehaviorStore, tmp_path: Path
) -> None:
    screen = io.StringIO()
    platform = ConsolePlatform(Console(file=screen, width=200), tmp_path / "chat", "zoe")
    lines = iter(["/start", "1", "frogs rule 🐸", "/sticker we won!!", "/quit", "never read"])

    async def read() -> str | None:
        return next(lines, None)

    await chat_loop(bot, platform, ZOE, read)

    printed = screen.getvalue()
    assert "[1] Personalize + help train" in printed
    history = await store.recent_history(ZOE, 10)
    assert [item.kind for item in history] == ["message", "sticker"]
    assert history[1].image_sha256 is not None  # consented to training: the emoji's art was kept
    [path] = sorted((tmp_path / "chat").glob("*.webp"))
    assert f"(sticker) {path}" in printed
    assert Image.open(path).size == (512, 512)
