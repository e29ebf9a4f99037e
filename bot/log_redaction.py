"""Secrets never reach a log line: each record's message and traceback are redacted as the record is
made, before any logger, filter or handler (ours or a library's) sees it."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

REDACTED = "<redacted>"
# Shorter values (a 4-character password, say) would mangle ordinary words and numbers all over the log
# if replaced everywhere; such a secret is too weak to protect this way, and is left as it is.
MIN_SECRET_CHARS = 6
# A Bot API URL holds the token whatever it is: .../bot<token>/getUpdates, .../file/bot<token>/<path>,
# and a base URL ends with one shaped <bot id>:<secret> (python-telegram-bot logs it at DEBUG).
_BOT_TOKEN_IN_URL = re.compile(r"(/(?:file/)?bot)(?:[^/\s]+(?=/)|\d+:[\w-]+)")


class Redactor:
    """Replaces the secrets it was given, raw or URL-quoted, and Bot API tokens in URLs with `<redacted>`."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def add(self, *secrets: str | None) -> None:
        for secret in secrets:
            if secret and len(secret) >= MIN_SECRET_CHARS:
                self._secrets |= {secret, quote(secret, safe="")}
        # longest first: a secret that contains another is replaced whole
        alternatives = sorted(self._secrets, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, alternatives))) if alternatives else None

    def __call__(self, text: str) -> str:
        if self._pattern is not None:
            text = self._pattern.sub(REDACTED, text)
        return _BOT_TOKEN_IN_URL.sub(rf"\1{REDACTED}", text)

    def redact_record(self, record: logging.LogRecord) -> None:
        """Render the message and traceback once, redacted; Formatters use a preset `exc_text` as is."""
        try:
            message = record.getMessage()
        except Exception:  # arguments that do not fit the format must not fail the caller's log call
            message = f"{record.msg} {record.args!r}"
        record.msg, record.args = self(message), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self(record.exc_text)
        if record.stack_info:
            record.stack_info = self(record.stack_info)


_redactor = Redactor()


class _RedactingFactory:
    """The log record factory, wrapped: every record of every logger is made through it."""

    def __init__(self, make_record: Callable[..., logging.LogRecord]) -> None:
        self.make_record = make_record

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.make_record(*args, **kwargs)
        _redactor.redact_record(record)
        return record


def redact(*secrets: str | None) -> None:
    """Hide these values in every log record made from now on (once `install` has run)."""
    _redactor.add(*secrets)


def install(*secrets: str | None) -> None:
    """Redact `secrets` and Bot API tokens in URLs in every log record; calling again only adds secrets."""
    redact(*secrets)
    if not isinstance(logging.getLogRecordFactory(), _RedactingFactory):
        logging.setLogRecordFactory(_RedactingFactory(logging.getLogRecordFactory()))
