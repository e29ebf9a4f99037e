"""Progress for one /sticker, as the user sees it: the service reports from its own task, so the
updates are shown one after another, in order, and none after the request has ended."""

from __future__ import annotations

import asyncio
import logging
from types import TracebackType

from bot.chat import ChatPlatform
from bot.service import ServiceProgress

log = logging.getLogger(__name__)

WORDS = {"warming up": "warming up…", "running": "drawing…"}


class ProgressRelay:
    def __init__(self, platform: ChatPlatform, chat: str) -> None:
        self.platform = platform
        self.chat = chat
        self._last: asyncio.Future[None] | None = None  # the newest update, which awaits the one before
        self._ended = False

    def report(self, update: ServiceProgress) -> None:
        """The service's progress callback."""
        if self._ended:
            return
        text = (
            f"queued (#{update.position})"
            if update.stage == "queued"
            else WORDS.get(update.stage, update.stage)
        )
        self._last = asyncio.ensure_future(self._show(self._last, text))

    async def _show(self, previous: asyncio.Future[None] | None, text: str) -> None:
        if previous is not None:
            await asyncio.gather(previous, return_exceptions=True)
        if not self._ended:
            await self.platform.progress(self.chat, text)

    async def __aenter__(self) -> ProgressRelay:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        """The request ended: updates not yet shown are dropped, the one being shown finishes first."""
        self._ended = True
        if self._last is not None:
            [outcome] = await asyncio.gather(self._last, return_exceptions=True)
            if isinstance(outcome, Exception):
                log.warning("a progress update failed: %s", outcome)
