"""`pmg chat`'s adapter: typed lines become messages and sticker uses, numbers press buttons, a sticker
lands as a file whose path is printed; `pmg chat` keeps the terminal for the conversation."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from PIL import Image
from rich.console import Console

from adapters.console.terminal import ConsolePlatform, chat_loop, parse_line
from adapters.store.behavior_store import SqlBehaviorStore
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
    bot: StickerBot, store: SqlBehaviorStore
) -> None:
    screen = io.StringIO()
    platform = ConsolePlatform(Console(file=screen, width=200), bot.files, ZOE)
    lines = iter(["/start", "1", "frogs rule 🐸", "/sticker we won!!", "/quit", "never read"])

    async def read() -> str | None:
        return next(lines, None)

    await chat_loop(bot, platform, ZOE, read)

    printed = screen.getvalue()
    assert "[1] Personalize + help train" in printed
    history = await store.recent_history(ZOE, 10)
    assert [item.kind for item in history] == ["message", "sticker"]
    assert history[1].image_sha256 is not None  # consented to training: the emoji's art was kept
    [path] = sorted(bot.files.folder(ZOE).glob("*.webp"))
    assert f"(sticker) {path}" in printed
    assert Image.open(path).size == (512, 512)


def test_pmg_chat_keeps_the_terminal_for_the_conversation_and_logs_to_a_private_file(data_dir: Path) -> None:
    lines = ["/start", "1", "🐸 frogs are the best", "/sticker we won", "/quit"]
    chat = subprocess.run(
        [sys.executable, "-m", "bot.cli", "chat", "--user", "newbie"],
        input="\n".join(lines) + "\n",
        capture_output=True,
        encoding="utf-8",
        timeout=1200,  # the first run in a session trains the mood model
    )

    terminal = chat.stdout + chat.stderr
    assert chat.returncode == 0, terminal
    assert "(sticker)" in chat.stdout
    for noise in ("INFO", "WARNING", "Loading", "it/s", "%|"):  # log lines, progress bars
        assert noise not in terminal, terminal
    log_file = data_dir / "logs" / "chat.log"
    assert terminal.count(str(log_file)) == 1
    assert (log_file.stat().st_mode & 0o777, log_file.parent.stat().st_mode & 0o777) == (0o600, 0o700)
    assert "INFO bot.service: sticker worker ready" in log_file.read_text()
