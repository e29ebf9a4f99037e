"""`pmg run` as an operator runs it: a real process polling the fake Bot API, stopped by SIGTERM with
every waiting user answered; missing tokens are one clear line before any model loads."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from typer.testing import CliRunner

from bot.cli import app
from telegram_fake import FakeBotApi, text_message


def test_run_without_a_token_says_which_one(data_dir: Path) -> None:
    result = CliRunner().invoke(app, ["run", "all"])
    assert result.exit_code == 1
    assert "PMG_TELEGRAM_TOKEN and PMG_DISCORD_TOKEN" in result.output and "pmg chat" in result.output


async def test_sigterm_stops_cleanly_and_the_waiting_user_gets_an_answer(data_dir: Path) -> None:
    async with FakeBotApi().serving() as api:
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
            await api.push(api.update(message=text_message("ann", "/sticker we won the cup!!", 1)))
            await api.wait_for("sendMessage")  # the progress message: the request is with the service
            process.send_signal(signal.SIGTERM)
            _, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()

    log = stderr.decode()
    assert process.returncode == 0, log
    assert "running on telegram" in log and log.rstrip().endswith("stopped") and "Traceback" not in log
    retry = [c for c in api.called("sendMessage") if "ask again" in c.params["text"]]
    assert api.called("sendSticker") or retry  # answered either way, never left waiting
