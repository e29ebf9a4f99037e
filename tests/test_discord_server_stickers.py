"""➕ Add to server on Discord, from raw gateway payloads against the fake API: offered only where the
user and the bot may both manage the server's expressions; the sticker becomes one of the server's
(a 320-px PNG named after its keywords), is recorded as feedback and is not the user's pack."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import pytest
from PIL import Image

from adapters.store.behavior_store import SqlBehaviorStore
from bot.chat_commands import StickerBot
from chat_drivers import USERS, key, last
from discord_fake import DiscordDriver, discord_driver

pytestmark = pytest.mark.sqlite_only


@pytest.fixture
async def discord(bot: StickerBot) -> AsyncIterator[DiscordDriver]:
    async with discord_driver(bot) as driver:
        yield driver


async def sticker_buttons(driver: DiscordDriver) -> list[str]:
    await driver.command("ann", "start")
    await driver.press("ann", f"consent:personalize:{USERS['ann']}")
    await driver.say("ann", "frogs!", sticker="🐸", message_id=1)
    await driver.command("ann", "sticker", "we won the cup!!")
    return [b.label for b in last(driver, "sticker").buttons]


async def test_add_to_server_is_offered_only_when_both_may_manage_expressions(discord: DiscordDriver) -> None:
    assert await sticker_buttons(discord) == ["🔄 Another", "🎨 Choose"]
    discord.expression_managers = {"ann"}  # the user alone: still no
    await discord.command("ann", "sticker", "again!")
    assert "➕ Add to server" not in [b.label for b in last(discord, "sticker").buttons]


async def test_the_sticker_becomes_the_servers_and_is_recorded(
    discord: DiscordDriver, store: SqlBehaviorStore
) -> None:
    discord.expression_managers = {"ann", "bot"}
    assert await sticker_buttons(discord) == ["🔄 Another", "🎨 Choose", "➕ Add to server"]

    await discord.press("ann", last(discord, "sticker").buttons[2].action)

    [created] = [call for call in discord.api.calls if call.path == "/guilds/{guild_id}/stickers"]
    assert created.payload["name"] == "frog joyful"  # the character, then the mood's word
    assert created.payload["tags"] == "grinning_face_with_smiling_eyes"  # 😄: a joyful sticker
    image = Image.open(io.BytesIO(created.files["sticker.png"]))
    assert (image.format, image.size) == ("PNG", (320, 320))
    assert "this server's stickers" in last(discord, "text").text
    ann = key(discord.platform, "ann")
    assert [f["kind"] for f in (await store.export_user(ann))["feedback"]][-1] == "pack"
    assert await store.packs(ann) == []  # the server's, not a pack of hers
