"""The contract every platform keeps: the same use-case scenarios, run against the in-memory platform
and against each adapter driven as its users meet it (Telegram over a fake Bot API server, Discord from
raw gateway payloads)."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import AsyncIterator

import pytest
from PIL import Image

from adapters.store.behavior_store import SqlBehaviorStore
from bot.chat_commands import StickerBot
from chat_drivers import ChatDriver, MemoryDriver, key, last
from discord_fake import discord_driver
from telegram_fake import TelegramDriver

DRIVERS = ["memory", "telegram", "discord"]
pytestmark = pytest.mark.both_backends


@pytest.fixture(params=DRIVERS)
async def driver(request: pytest.FixtureRequest, bot: StickerBot) -> AsyncIterator[ChatDriver]:
    if request.param == "memory":
        yield MemoryDriver(bot)
    elif request.param == "discord":
        async with discord_driver(bot) as discord:
            yield discord
    elif request.param == "telegram":
        async with TelegramDriver.started(bot) as telegram:
            yield telegram


async def consent(driver: ChatDriver, user: str, choice: str = "all") -> None:
    await driver.command(user, "start")
    await driver.press(user, f"consent:{choice}:{key(driver.platform, user).external_id}")


async def test_nothing_is_recorded_before_consent(driver: ChatDriver, store: SqlBehaviorStore) -> None:
    ann = key(driver.platform, "ann")
    await driver.say("ann", "hello", sticker="🐸", message_id=1)
    assert await store.recent_history(ann, 10) == []

    await driver.command("ann", "start")
    assert [b.action for b in last(driver, "text").buttons] == [
        f"consent:all:{ann.external_id}",
        f"consent:personalize:{ann.external_id}",
        f"consent:none:{ann.external_id}",
    ]
    await driver.press("ann", f"consent:personalize:{ann.external_id}")
    assert "personalize" in last(driver, "text").text
    await driver.say("ann", "hi frog", sticker="🐸", message_id=2)
    history = await store.recent_history(ann, 10)
    assert (history[0].kind, history[0].text) == ("message", "hi frog")
    assert history[-1].kind == "sticker" and history[-1].sticker is not None
    assert "🐸" in (history[-1].sticker.emoji or "")


async def test_sticker_arrives_after_progress_and_is_recorded(
    driver: ChatDriver, store: SqlBehaviorStore
) -> None:
    await consent(driver, "ann")
    await driver.say("ann", "frogs!", sticker="🐸", message_id=1)

    await driver.command("ann", "sticker", "we won the cup!!")

    image = Image.open(io.BytesIO(last(driver, "sticker").data))
    assert (image.format, image.size) == (driver.sticker_format, (512, 512))
    assert any(s.kind == "progress" for s in driver.sent)
    [generation] = (await store.export_user(key(driver.platform, "ann")))["generations"]
    assert generation["preference_keywords"][0] == "frog" and generation["status"] == "done"


async def test_another_and_choose_under_the_sticker(
    driver: ChatDriver, bot: StickerBot, store: SqlBehaviorStore
) -> None:
    bot.settings = bot.settings.model_copy(update={"sticker_cooldown_s": 0})  # 🔄 waits like /sticker
    ann = key(driver.platform, "ann")
    await consent(driver, "ann")
    await driver.say("ann", "frogs!", sticker="🐸", message_id=1)
    await driver.command("ann", "sticker", "we won the cup!!")
    buttons = last(driver, "sticker").buttons
    another, choose = (b.action for b in buttons[:2])
    assert another.startswith("another:") and choose.startswith("choose:")
    assert ("➕ My pack" in [b.label for b in buttons]) == (driver.platform.value == "telegram")

    await driver.press("ann", another)
    assert len([s for s in driver.sent if s.kind == "sticker"]) == 2
    await driver.press("ann", choose)
    sheet = last(driver, "image")
    assert [b.label for b in sheet.buttons] == ["1", "2", "3", "4", "5"]
    await driver.press("ann", sheet.buttons[1].action)

    image = Image.open(io.BytesIO(last(driver, "sticker").data))
    assert (image.format, image.size) == (driver.sticker_format, (512, 512))
    kinds = [f["kind"] for f in (await store.export_user(ann))["feedback"]]
    assert kinds == ["sent", "sent", "another", "chosen"]


async def test_export_is_a_private_zip_and_forget_deletes_after_confirmation(
    driver: ChatDriver, store: SqlBehaviorStore
) -> None:
    ann = key(driver.platform, "ann")
    await consent(driver, "ann")
    await driver.say("ann", "secret plans", message_id=1)

    await driver.command("ann", "export")
    export = last(driver, "file")
    assert export.text == "pmg-stickers-export.zip"
    with zipfile.ZipFile(io.BytesIO(export.data)) as archive:
        exported = json.loads(archive.read("pmg-stickers-export.json"))
    assert [m["text"] for m in exported["messages"]] == ["secret plans"]

    await driver.command("ann", "forget")
    assert len(await store.recent_history(ann, 10)) == 1  # asking deletes nothing
    await driver.press("ann", f"forget:yes:{ann.external_id}")
    assert "deleted" in last(driver, "text").text
    assert await store.recent_history(ann, 10) == []
    assert (await store.get_consent(ann)).personalize is False


async def test_admin_commands_are_for_admins_only(driver: ChatDriver) -> None:
    await driver.command("ann", "retrain")
    assert "for the bot's admins" in last(driver, "text").text
    await driver.command("ann", "stats")
    assert "for the bot's admins" in last(driver, "text").text

    await driver.command("root", "stats")
    assert "queue_length: 0" in last(driver, "text").text


async def test_privacy_and_about_answer_everyone(driver: ChatDriver) -> None:
    await driver.command("ben", "privacy")
    assert "/forget" in last(driver, "text").text
    await driver.command("ben", "about")
    assert "CC BY-SA" in last(driver, "text").text


async def test_edits_follow_and_deleted_messages_go(driver: ChatDriver, store: SqlBehaviorStore) -> None:
    ann = key(driver.platform, "ann")
    await consent(driver, "ann", "personalize")
    await driver.say("ann", "I love cats", message_id=1)
    await driver.say("ann", "and dogs", message_id=2)

    await driver.edit("ann", 1, "I love frogs")
    assert [item.text for item in await store.recent_history(ann, 10)] == ["I love frogs", "and dogs"]

    if driver.can_delete:
        await driver.delete("ann", 2)
        assert [item.text for item in await store.recent_history(ann, 10)] == ["I love frogs"]
