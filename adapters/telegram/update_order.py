"""Users are served at the same time, each user's own updates one after another: a message sent
before /sticker is stored before the sticker is made, while one user's slow sticker delays nobody else."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

log = logging.getLogger(__name__)

MAX_WAITING_UPDATES = 64  # per user, behind the one running; a flood beyond this is dropped


class PerUserOrder(BaseUpdateProcessor):
    """One running update per user, holding one of python-telegram-bot's shared slots; the user's later
    updates wait in the user's own queue, which that running update drains in order, so a user who
    floods the bot fills no slot another user needs."""

    def __init__(self, max_concurrent_updates: int) -> None:
        super().__init__(max_concurrent_updates)
        self._waiting: dict[int, deque[Awaitable[Any]]] = {}  # user id -> updates behind the running one
        self._warned: set[int] = set()  # users told to slow down since their queue last drained
        self.on_overflow: Callable[[Update], object] | None = None  # tells the user (set by the app)

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        if not isinstance(update, Update) or update.effective_user is None:
            await coroutine
            return
        user_id = update.effective_user.id
        waiting = self._waiting.get(user_id)
        if waiting is None:
            await self._run_in_order(user_id, coroutine)
        elif len(waiting) < MAX_WAITING_UPDATES:
            waiting.append(coroutine)  # returns at once: the slot goes back while it waits
        else:
            self._drop(update, user_id, coroutine)

    async def _run_in_order(self, user_id: int, first: Awaitable[Any]) -> None:
        waiting: deque[Awaitable[Any]] = deque()
        self._waiting[user_id] = waiting
        try:
            await _logging_errors(first)
            while waiting:
                await _logging_errors(waiting.popleft())
        finally:
            del self._waiting[user_id]
            self._warned.discard(user_id)
            for coroutine in waiting:  # only when cancelled: nothing is left to run them
                _close(coroutine)

    def _drop(self, update: Update, user_id: int, coroutine: Awaitable[Any]) -> None:
        _close(coroutine)
        log.warning(
            "telegram user %s has %d updates waiting: update %s dropped",
            user_id,
            MAX_WAITING_UPDATES,
            update.update_id,
        )
        if user_id not in self._warned and self.on_overflow is not None:
            self._warned.add(user_id)
            self.on_overflow(update)

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None


async def _logging_errors(coroutine: Awaitable[Any]) -> None:
    """Application.process_update hands handler errors to the error handler; anything that still
    escapes must not stop the user's later updates."""
    try:
        await coroutine
    except Exception:
        log.exception("telegram update failed outside its handlers")


def _close(coroutine: Awaitable[Any]) -> None:
    if isinstance(coroutine, Coroutine):  # never awaited: closed, so asyncio does not warn
        coroutine.close()
