"""The database server goes away mid-run and comes back: the bot answers "can't save right now" instead of
crashing, loses nothing already stored, and saves again once the server returns. PostgreSQL only (a SQLite
file does not go away); the outage is a real TCP proxy in front of the real server, closed and reopened."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.store.behavior_store import SqlBehaviorStore
from bot.behavior import CANT_SAVE
from bot.chat_commands import StickerBot
from chat_drivers import MemoryDriver, key

pytestmark = [pytest.mark.both_backends, pytest.mark.postgresql_only]


class Proxy:
    """127.0.0.1:<port> → the PostgreSQL server; `down()` drops every connection and refuses new ones."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.server: asyncio.Server | None = None
        self.pipes: set[asyncio.StreamWriter] = set()

    async def up(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def down(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in list(self.pipes):
            writer.close()
        await self.server.wait_closed()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.pipes |= {client_writer, server_writer}

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                writer.close()

        await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer))


@pytest.fixture
async def proxy(db_url: str) -> AsyncIterator[Proxy]:
    running = Proxy(int(db_url.split("@127.0.0.1:")[1].split("/")[0]))
    await running.up()
    yield running
    if running.server is not None and running.server.is_serving():
        await running.down()


@pytest.fixture
def store_url(db_url: str, proxy: Proxy) -> str:
    return db_url.replace("@127.0.0.1:5432/", f"@127.0.0.1:{proxy.port}/")


@pytest.fixture
async def bot_store(store_url: str, tmp_path: Path) -> AsyncIterator[SqlBehaviorStore]:
    opened = await SqlBehaviorStore.open(store_url, tmp_path / "blobs")
    yield opened
    await opened.close()


async def test_the_bot_says_it_cannot_save_while_the_database_is_away_and_saves_again_after(
    bot: StickerBot, bot_store: SqlBehaviorStore, proxy: Proxy
) -> None:
    bot.store = bot_store  # the bot's store reaches the server through the proxy
    driver = MemoryDriver(bot)
    ann = key(driver.platform, "ann")
    await driver.command("ann", "start")
    await driver.press("ann", f"consent:all:{ann.external_id}")
    await driver.say("ann", "before the outage", message_id=1)

    await proxy.down()
    await driver.say("ann", "during the outage", message_id=2)  # not saved, and no crash
    await driver.command("ann", "consent")
    assert driver.sent[-1].text == CANT_SAVE
    await driver.command("ann", "sticker", "we won!!")
    assert driver.sent[-1].text == CANT_SAVE

    await proxy.up()
    await driver.say("ann", "after the outage", message_id=3)
    history = await bot_store.recent_history(ann, 10)
    assert [item.text for item in history] == ["before the outage", "after the outage"]
