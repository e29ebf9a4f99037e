"""`pmg run` as an operator runs it: a real process polling the fake Bot API, stopped by SIGTERM with
every waiting user answered, never hanging (a second SIGTERM ends it); missing tokens are one clear
line before any model loads."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from typer.testing import CliRunner

from bot.cli import app
from telegram_fake import FakeBotApi, text_message


def test_run_without_a_token_says_which_one(data_dir: Path) -> None:
    result = CliRunner().invoke(app, ["run", "all"])
    assert result.exit_code == 1
    assert "PMG_TELEGRAM_TOKEN and PMG_DISCORD_TOKEN" in result.output and "pmg chat" in result.output


@asynccontextmanager
async def running_bot(api: FakeBotApi) -> AsyncIterator[asyncio.subprocess.Process]:
    """`pmg run telegram` in its own process against the fake Bot API, polling (models loaded)."""
    settings = api.settings()
    env = {
        **os.environ,
        "PMG_TELEGRAM_TOKEN": "123456:TEST-token",
        "PMG_TELEGRAM_BASE_URL": settings.telegram_base_url,
        "PMG_TELEGRAM_BASE_FILE_URL": settings.telegram_base_file_url,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "run", "telegram", env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        await api.wait_for("deleteWebhook", within_s=300)  # polling has started (models loaded)
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_sigterm_stops_cleanly_and_the_waiting_user_gets_an_answer(data_dir: Path) -> None:
    async with FakeBotApi().serving() as api, running_bot(api) as process:
        await api.push(api.update(message=text_message("ann", "/sticker we won the cup!!", 1)))
        await api.wait_for("sendMessage")  # the progress message: the request is with the service
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=60)

    log = stderr.decode()
    assert process.returncode == 0, log
    assert "running on telegram" in log and log.rstrip().endswith("stopped") and "Traceback" not in log
    retry = [c for c in api.called("sendMessage") if "ask again" in c.params["text"]]
    assert api.called("sendSticker") or retry  # answered either way, never left waiting


async def test_a_sticker_arriving_during_the_stop_cannot_hang_it(data_dir: Path) -> None:
    """Issue 12 item 5: a /sticker that reached the service after it stopped waited forever."""
    async with FakeBotApi().serving() as api, running_bot(api) as process:
        process.send_signal(signal.SIGTERM)
        for message_id in range(1, 4):  # while the bot stops: polled or left for the next start
            await api.push(
                api.update(message=text_message("ann", f"/sticker hello {message_id}", message_id))
            )
            await asyncio.sleep(0.2)
        started = time.monotonic()
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
        took = time.monotonic() - started

    log = stderr.decode()
    assert process.returncode == 0 and took < 30, log
    assert "Traceback" not in log and log.rstrip().endswith("stopped")
    answers = [c.params["text"] for c in api.called("sendMessage")]
    assert all("restarting; please ask again in a minute" in text for text in answers if "Sorry" in text)


async def test_a_second_sigterm_ends_a_stop_that_waits_on_the_network(data_dir: Path) -> None:
    """A clean stop waits for the updates in hand; when the network hangs, a second signal ends it."""
    async with FakeBotApi().serving() as api, running_bot(api) as process:
        api.stalled.add("sendMessage")
        await api.push(api.update(message=text_message("ann", "/privacy", 1)))
        await api.wait_for("sendMessage")  # the answer hangs: the update stays in hand
        process.send_signal(signal.SIGTERM)
        await asyncio.sleep(1)
        assert process.returncode is None  # the first signal waits for the update in hand
        process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
        took = time.monotonic() - started

    assert took < 5, stderr.decode()
    assert process.returncode == 130 and "second signal" in stderr.decode()
