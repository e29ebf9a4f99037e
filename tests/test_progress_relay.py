"""Progress as the user sees it: in the order the service reported it, and nothing after the answer,
however slow the platform is to show each update."""

from __future__ import annotations

import asyncio

from bot.progress_relay import ProgressRelay
from bot.service import ServiceProgress
from memory_platform import MemoryPlatform


class SlowPlatform(MemoryPlatform):
    """Each progress message takes longer to show than the one after it would."""

    def __init__(self) -> None:
        super().__init__()
        self.delays = iter([0.05, 0.01, 0.0])

    async def progress(self, chat: str, text: str) -> None:
        await asyncio.sleep(next(self.delays, 0.0))
        await super().progress(chat, text)


async def test_updates_are_shown_in_order_and_none_after_the_request_ends() -> None:
    platform = SlowPlatform()
    async with ProgressRelay(platform, "chat-1") as relay:
        relay.report(ServiceProgress("warming up"))
        relay.report(ServiceProgress("queued", position=2))
        relay.report(ServiceProgress("running"))
        await asyncio.sleep(0.1)  # all three shown by now
        relay.report(ServiceProgress("queued", position=1))  # not yet shown when the request ends
    relay.report(ServiceProgress("running"))  # after the end
    await asyncio.sleep(0.05)

    assert [s.text for s in platform.sent] == ["warming up…", "queued (#2)", "drawing…"]
