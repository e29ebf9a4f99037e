"""No secret reaches a log line: the Telegram token through a real poll, sticker download and reply,
in tracebacks and in any Bot API URL; the webhook secret, the Discord token and the database password."""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import quote

import pytest

from adapters.store.database import sqlite_file
from adapters.store.errors import UnsupportedDatabaseError
from adapters.telegram.app import running_telegram, webhook_secret
from bot.chat_commands import StickerBot
from bot.cli import main
from bot.cli_support import load_settings
from bot.log_redaction import Redactor
from bot.settings import Settings
from telegram_fake import TOKEN, FakeBotApi, button_press, sticker_message, text_message, webp_image

LIBRARIES = ("httpx", "httpcore", "telegram")
PASSWORD = "p@ss/word!42"


def set_up_like_the_cli(monkeypatch: pytest.MonkeyPatch, *, verbose: bool = True, **env: str) -> Settings:
    """What `pmg [-v] COMMAND` does before its work, with `env` as PMG_* variables."""
    for name, value in env.items():
        monkeypatch.setenv(f"PMG_{name.upper()}", value)
    main(verbose=verbose)  # the callback every command runs first
    return load_settings()  # what every command does next


async def test_the_telegram_token_is_in_no_log_line_of_a_poll_a_sticker_download_and_a_reply(
    bot: StickerBot,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    async with FakeBotApi().serving() as api:
        settings = api.settings()
        set_up_like_the_cli(monkeypatch, telegram_token=TOKEN)
        caplog.set_level(logging.DEBUG)
        for name in ("httpx", "httpcore", "telegram"):  # every request line, as if someone asked for them
            logging.getLogger(name).setLevel(logging.DEBUG)
        async with running_telegram(settings, bot, poll_timeout=1):
            await api.push(api.update(callback_query=button_press("ann", "consent:all")))
            await api.push(api.update(message=text_message("ann", "frogs are the best", 1)))
            await api.push(api.update(message=sticker_message(api, "ann", "🐸", 2, webp_image())))
            await api.wait_for("getFile")
            await api.push(api.update(message=text_message("ann", "/sticker we won!!", 3)))
            await api.wait_for("sendSticker")

    messages = [record.getMessage() for record in caplog.records]
    assert not [m for m in messages if TOKEN in m]
    assert not [r.exc_text for r in caplog.records if TOKEN in (r.exc_text or "")]
    stderr = capfd.readouterr().err  # what `pmg -v run` prints
    assert TOKEN not in stderr and "/bot<redacted>/getUpdates" in stderr
    requests = [m for m in messages if m.startswith("HTTP Request:")]
    assert any("/bot<redacted>/getUpdates" in m for m in requests), requests
    assert any("/file/bot<redacted>/stickers/" in m for m in requests), requests  # the download


def test_a_logged_exception_holding_the_token_is_redacted_in_the_formatted_log(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    set_up_like_the_cli(monkeypatch, verbose=False, telegram_token=TOKEN)
    try:
        raise RuntimeError(f"token {TOKEN} refused")
    except RuntimeError:
        logging.getLogger("telegram.ext.Updater").exception("polling failed")

    assert "token <redacted> refused" in caplog.text and TOKEN not in caplog.text
    stderr = capfd.readouterr().err  # what `pmg run` prints
    assert "RuntimeError: token <redacted> refused" in stderr and TOKEN not in stderr


def test_a_bot_api_url_is_redacted_whatever_its_token(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    set_up_like_the_cli(monkeypatch)  # no token configured: a URL shape is enough
    log = logging.getLogger("tests")
    log.warning(
        "GET %s, %s", "https://api.telegram.org/bot42:another-one/getMe", "/file/bot42:another-one/a.webp"
    )
    log.warning("Set Bot API URL: %s", "https://api.telegram.org/bot42:another-one")
    assert [record.getMessage() for record in caplog.records] == [
        "GET https://api.telegram.org/bot<redacted>/getMe, /file/bot<redacted>/a.webp",
        "Set Bot API URL: https://api.telegram.org/bot<redacted>",
    ]


def test_the_webhook_secrets_the_discord_token_and_the_database_password_are_redacted(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    settings = set_up_like_the_cli(
        monkeypatch,
        telegram_webhook_secret="configured_hook_secret",
        discord_token="discord.token.value",
        db_url=f"sqlite+aiosqlite://pmg:{quote(PASSWORD, safe='')}@/{tmp_path}/pmg.db",
    )
    made = webhook_secret(settings.model_copy(update={"telegram_webhook_secret": None}))  # a random one

    log = logging.getLogger("tests")
    log.warning("hooks %s and %s, discord %s", "configured_hook_secret", made, "discord.token.value")
    log.warning("database %s, password %s", settings.database_url, PASSWORD)

    for secret in ("configured_hook_secret", made, "discord.token.value", PASSWORD, quote(PASSWORD, safe="")):
        assert secret not in caplog.text
    assert caplog.text.count("<redacted>") == 5


def test_setting_up_again_adds_secrets_and_keeps_one_record_factory(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    set_up_like_the_cli(monkeypatch, telegram_token=TOKEN)
    factory = logging.getLogRecordFactory()
    set_up_like_the_cli(monkeypatch, telegram_token="654321:OTHER-token")

    logging.getLogger("tests").warning("%s then %s", TOKEN, "654321:OTHER-token")
    assert caplog.records[-1].getMessage() == "<redacted> then <redacted>"
    assert logging.getLogRecordFactory() is factory


def test_http_request_lines_stay_out_of_the_log_even_with_verbose(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    set_up_like_the_cli(monkeypatch, verbose=True)
    assert logging.getLogger("bot").isEnabledFor(logging.DEBUG)
    assert not logging.getLogger("httpx").isEnabledFor(logging.INFO)
    assert not logging.getLogger("httpcore").isEnabledFor(logging.INFO)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+asyncpg://pmg:hunter2secret@db.example.org/pmg",  # not supported
        "sqlite+aiosqlite://pmg:hunter2secret@db.example.org",  # names no file
    ],
)
def test_database_url_errors_show_the_url_without_its_password(url: str) -> None:
    with pytest.raises(UnsupportedDatabaseError) as raised:
        sqlite_file(url)
    assert "hunter2secret" not in str(raised.value) and "pmg:***@db.example.org" in str(raised.value)


# --- the redactor itself -------------------------------------------------------------------------


def test_the_redactor_hides_secrets_raw_and_url_quoted_but_not_short_ones() -> None:
    redact = Redactor()
    redact.add(PASSWORD, None, "", "abc12")
    quoted = quote(PASSWORD, safe="")
    assert redact(f"db://u:{quoted}@h/pmg ({PASSWORD})") == "db://u:<redacted>@h/pmg (<redacted>)"
    assert (
        redact("abc12 is 5 characters: too few to hide everywhere")
        == "abc12 is 5 characters: too few to hide everywhere"
    )


def test_a_secret_holding_another_is_hidden_whole() -> None:
    redact = Redactor()
    redact.add("token-abcdef", "token-abcdef-longer")
    assert redact("a token-abcdef-longer b token-abcdef") == "a <redacted> b <redacted>"


def test_a_record_is_rendered_once_redacted_even_when_its_arguments_do_not_fit() -> None:
    redact = Redactor()
    redact.add(TOKEN)
    fits = logging.LogRecord("t", logging.INFO, __file__, 1, "%s: %d%%", (TOKEN, 5), None)
    misfit = logging.LogRecord("t", logging.INFO, __file__, 1, "%d items", (TOKEN,), None)
    for record in (fits, misfit):
        redact.redact_record(record)
    assert (fits.msg, fits.args, fits.getMessage()) == ("<redacted>: 5%", (), "<redacted>: 5%")
    assert misfit.getMessage() == "%d items ('<redacted>',)"
