"""What only the Discord adapter does: deferring first, follow-ups, ephemeral answers, custom emoji and
stickers with their images, bad input, the command sync and start-up errors. Driven like Discord
drives a bot: raw gateway payloads through discord.py, against the fake Discord API of discord_fake."""

from __future__ import annotations

import hashlib
import io
import json
import sys
import zipfile
from collections.abc import AsyncIterator
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import discord
import pytest
from discord.errors import ConnectionClosed
from discord.gateway import DiscordWebSocket
from discord.http import HTTPClient, Route
from PIL import Image

from adapters.discord.app import DiscordStartError, running_discord, sync_commands
from adapters.discord.replies import InteractionReplies
from adapters.store.behavior_store import SqlBehaviorStore
from bot.chat_commands import StickerBot
from bot.identity import Platform
from bot.settings import Settings
from chat_drivers import CHAT, USERS, key, last
from discord_fake import APPLICATION_ID, GUILD_ID, DiscordDriver, FakeDiscordApi, discord_driver

EPHEMERAL = 64  # Discord's message flag
CUSTOM_EMOJI_ID = 1100000000000000001
STICKER_ID = 1200000000000000001
ANN = key(Platform.DISCORD, "ann")


@pytest.fixture
async def driver(bot: StickerBot) -> AsyncIterator[DiscordDriver]:
    async with discord_driver(bot) as opened:
        yield opened


def png(color: str = "green") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGBA", (64, 64), color).save(buffer, "PNG")
    return buffer.getvalue()


def calls(driver: DiscordDriver, method: str, path: str) -> list[Any]:
    return [call for call in driver.api.calls if call.method == method and call.path == path]


async def consent(driver: DiscordDriver, user: str, choice: str) -> None:
    await driver.command(user, "start")
    await driver.press(user, f"consent:{choice}")


# --- slash commands -------------------------------------------------------------------------


async def test_sticker_is_deferred_first_and_the_png_follows_for_everyone(driver: DiscordDriver) -> None:
    await driver.command("ann", "sticker", "we won the cup!!")

    first, *rest = driver.api.calls[2:]  # after logging in: GET /users/@me, GET /oauth2/applications/@me
    assert (first.method, first.path) == ("POST", "/interactions/{webhook_id}/{webhook_token}/callback")
    assert first.payload == {"type": 5}  # deferred, not ephemeral: the sticker is for the channel
    followups = [call for call in rest if call.path == "/webhooks/{webhook_id}/{webhook_token}"]
    [sticker] = [call for call in followups if "sticker.png" in call.files]
    assert Image.open(io.BytesIO(sticker.files["sticker.png"])).format == "PNG"
    assert not sticker.payload.get("flags", 0) & EPHEMERAL
    progress = [call.payload["content"] for call in rest if call.method == "PATCH"]
    assert "drawing…" in progress and progress[-1] == "done ✓"  # the deferred response is the progress line


async def test_a_sticker_refused_before_any_progress_is_told_to_the_asker_alone(
    driver: DiscordDriver,
) -> None:
    """Discord turns the first follow-up of a deferral into the deferred message, public like it: the
    refusal must not become the channel's message."""
    await driver.command("ann", "sticker")  # no text, no history: nothing to answer
    await driver.command("ann", "sticker", "we won!!")
    await driver.command("ann", "sticker", "again!!")  # within the cooldown

    followups = calls(driver, "POST", "/webhooks/{webhook_id}/{webhook_token}")
    texts = [(call.payload.get("content"), call.shown_flags) for call in followups if not call.files]
    assert [content for content, _ in texts] == [
        "Tell me what to answer: /sticker we won the match!",
        texts[1][0],
    ]
    assert str(texts[1][0]).startswith("Easy there!")
    assert all(flags is not None and flags & EPHEMERAL for _, flags in texts)
    [sticker] = [call for call in followups if call.files]
    assert not (sticker.shown_flags or 0) & EPHEMERAL  # the sticker itself is for everyone
    deleted = calls(driver, "DELETE", "/webhooks/{webhook_id}/{webhook_token}/messages/@original")
    assert len(deleted) == 2  # each public "thinking…" that ended in a refusal is taken down


async def test_a_sticker_that_breaks_before_any_progress_tells_the_asker_alone(
    driver: DiscordDriver, store: SqlBehaviorStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_: object, **__: object) -> list[Any]:
        raise RuntimeError("database unreachable")

    monkeypatch.setattr(store, "recent_history", broken)
    await driver.command("ann", "sticker")

    [followup] = calls(driver, "POST", "/webhooks/{webhook_id}/{webhook_token}")
    assert followup.payload["content"].startswith("Sorry, something went wrong (error ")
    assert followup.shown_flags is not None and followup.shown_flags & EPHEMERAL
    assert len(driver.errors) == 1
    driver.errors.clear()


async def test_private_commands_answer_the_asker_alone(driver: DiscordDriver) -> None:
    for name in ["start", "privacy", "export"]:
        await driver.command("ann", name)
    deferrals = calls(driver, "POST", "/interactions/{webhook_id}/{webhook_token}/callback")
    assert [call.payload for call in deferrals] == [{"type": 5, "data": {"flags": EPHEMERAL}}] * 3
    followups = calls(driver, "POST", "/webhooks/{webhook_id}/{webhook_token}")
    assert all(call.payload["flags"] & EPHEMERAL for call in followups)
    export = last(driver, "file")
    assert export.text == "pmg-stickers-export.zip"
    with zipfile.ZipFile(io.BytesIO(export.data)) as archive:
        assert json.loads(archive.read("pmg-stickers-export.json"))["user"] is None


async def test_retrain_is_refused_to_non_admins_and_runs_for_admins(
    driver: DiscordDriver, bot: StickerBot
) -> None:
    report = {"examples": 3, "steps": 2, "val_loss_before": 1.5, "val_loss_after": 1.2, "promoted": False}
    bot.retrain_command = [sys.executable, "-c", f"print({json.dumps(json.dumps(report))})"]

    await driver.command("ann", "retrain")
    assert last(driver, "text").text == "/retrain is for the bot's admins."

    await driver.command("root", "retrain")
    texts = [sent.text for sent in driver.sent if sent.kind == "text"]
    assert texts[-2] == "Retrain started."
    assert texts[-1].startswith("Retrain done: 3 examples, 2 steps")


async def test_unknown_and_outdated_commands_get_a_pointer_to_help(driver: DiscordDriver) -> None:
    await driver.command("ann", "dance")  # a command Discord still lists from an older version

    [answer] = calls(driver, "POST", "/interactions/{webhook_id}/{webhook_token}/callback")
    assert answer.payload["type"] == 4 and answer.payload["data"]["flags"] == EPHEMERAL
    assert "I don't know that command" in answer.payload["data"]["content"]
    assert "/sticker" in answer.payload["data"]["content"]


async def test_a_failing_command_tells_the_user_an_error_id_and_logs_it(
    driver: DiscordDriver, store: SqlBehaviorStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_: object) -> dict[str, Any]:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(store, "export_user", broken)
    await driver.command("ann", "export")

    answer = last(driver, "text").text
    assert answer.startswith("Sorry, something went wrong (error ")
    [record] = driver.errors
    assert answer.split("error ")[1][:8] in record.getMessage() and "disk on fire" in str(record.exc_info)
    driver.errors.clear()


async def test_a_report_after_the_interaction_expired_goes_by_direct_message(driver: DiscordDriver) -> None:
    """A retrain outlives the 15-minute interaction token: its report cannot be a follow-up."""
    sixteen_minutes_ago = discord.utils.utcnow() - timedelta(minutes=16)
    payload = driver.interaction_payload("root", 2, {"id": "1", "name": "retrain", "type": 1})
    payload["id"] = str(discord.utils.time_snowflake(sixteen_minutes_ago))
    replies = InteractionReplies(
        discord.Interaction(data=payload, state=driver.client._connection), ephemeral=True
    )

    await replies.progress(CHAT, "retrain: still training (16 min)…")
    await replies.send_text(CHAT, "Retrain done.")

    assert [(call.method, call.path) for call in driver.api.calls[2:]] == [
        ("POST", "/users/@me/channels"),
        ("POST", "/channels/{channel_id}/messages"),
    ]
    assert driver.sent[-1].text == "Retrain done."


# --- buttons --------------------------------------------------------------------------------


async def test_a_forget_button_pressed_by_someone_else_deletes_nothing(
    driver: DiscordDriver, store: SqlBehaviorStore
) -> None:
    await consent(driver, "ann", "personalize")
    await driver.say("ann", "keep me", message_id=1)
    await driver.command("ann", "forget")

    await driver.press("ben", f"forget:yes:{USERS['ann']}")
    assert "for someone else" in last(driver, "text").text
    assert [item.text for item in await store.recent_history(ANN, 10)] == ["keep me"]

    await driver.press("ann", f"forget:yes:{USERS['ann']}")
    assert await store.recent_history(ANN, 10) == []


async def test_buttons_carry_their_action_and_still_work_after_a_restart(
    bot: StickerBot, store: SqlBehaviorStore
) -> None:
    async with discord_driver(bot) as before:
        await before.command("ann", "start")
        [followup] = calls(before, "POST", "/webhooks/{webhook_id}/{webhook_token}")
    ids = [button["custom_id"] for row in followup.payload["components"] for button in row["components"]]
    ann = USERS["ann"]
    assert ids == [f"pmg:consent:all:{ann}", f"pmg:consent:personalize:{ann}", f"pmg:consent:none:{ann}"]

    async with discord_driver(bot) as after:  # a new client, which never sent that message
        press = {"custom_id": f"pmg:consent:personalize:{ann}", "component_type": 2}
        await after.deliver(
            "INTERACTION_CREATE", after.interaction_payload("ann", 3, press, message=followup.answer)
        )
        assert "I personalize your stickers" in last(after, "text").text
    assert (await store.get_consent(ANN)).personalize


# --- messages -------------------------------------------------------------------------------


async def test_custom_emoji_sticker_and_unicode_emoji_are_three_sticker_uses(
    driver: DiscordDriver, store: SqlBehaviorStore
) -> None:
    emoji_image, sticker_image = png("green"), png("blue")
    driver.api.assets[f"https://cdn.discordapp.com/emojis/{CUSTOM_EMOJI_ID}.png"] = emoji_image
    driver.api.assets[f"https://cdn.discordapp.com/stickers/{STICKER_ID}.png"] = sticker_image
    await consent(driver, "ann", "all")

    await driver.say(
        "ann",
        f"gg <:party_frog:{CUSTOM_EMOJI_ID}> 🎉",
        message_id=7,
        sticker_items=[{"id": str(STICKER_ID), "name": "Wave", "format_type": 1}],
    )

    export = await store.export_user(ANN)
    assert [m["text"] for m in export["messages"]] == ["gg"]
    uses = sorted(export["sticker_uses"], key=lambda use: use["item_index"])
    assert [(u["name"], u["platform_sticker_id"], u["emoji"]) for u in uses] == [
        ("party_frog", str(CUSTOM_EMOJI_ID), None),
        ("Wave", str(STICKER_ID), None),
        ("party popper", None, "🎉"),
    ]
    hashes = [u["image_sha256"] for u in uses]
    assert hashes == [
        hashlib.sha256(emoji_image).hexdigest(),
        hashlib.sha256(sticker_image).hexdigest(),
        None,
    ]


async def test_images_are_downloaded_only_with_consent_to_train(
    driver: DiscordDriver, store: SqlBehaviorStore
) -> None:
    driver.api.assets[f"https://cdn.discordapp.com/emojis/{CUSTOM_EMOJI_ID}.png"] = png()
    await consent(driver, "ann", "personalize")
    await driver.say("ann", f"<:party_frog:{CUSTOM_EMOJI_ID}>", message_id=7)

    [use] = (await store.export_user(ANN))["sticker_uses"]
    assert use["image_sha256"] is None
    assert not [call for call in driver.api.calls if call.path == "cdn"]


async def test_stickers_without_a_usable_file_are_recorded_without_image(
    driver: DiscordDriver, store: SqlBehaviorStore
) -> None:
    """A lottie sticker has no picture, a failed download none either, nor a file that is no image."""
    driver.api.assets[f"https://cdn.discordapp.com/stickers/{STICKER_ID + 1}.png"] = (
        b"<html>not an image</html>"
    )
    await consent(driver, "ann", "all")

    await driver.say(
        "ann",
        f"<a:gone:{CUSTOM_EMOJI_ID}>",  # the CDN answers 404
        message_id=7,
        sticker_items=[
            {"id": str(STICKER_ID), "name": "Lottie", "format_type": 3},
            {"id": str(STICKER_ID + 1), "name": "Broken", "format_type": 1},
        ],
    )

    uses = sorted((await store.export_user(ANN))["sticker_uses"], key=lambda use: use["item_index"])
    assert [(u["name"], u["image_sha256"]) for u in uses] == [
        ("gone", None),
        ("Lottie", None),
        ("Broken", None),
    ]
    downloads = [call.url for call in driver.api.calls if call.path == "cdn"]
    assert downloads == [
        f"https://cdn.discordapp.com/emojis/{CUSTOM_EMOJI_ID}.webp?animated=true",
        f"https://cdn.discordapp.com/stickers/{STICKER_ID + 1}.png",
    ]


async def test_an_over_long_message_is_stored_as_a_truncated_prefix(
    driver: DiscordDriver, store: SqlBehaviorStore
) -> None:
    await consent(driver, "ann", "personalize")
    await driver.say("ann", "a" * 5000, message_id=7)

    [message] = (await store.export_user(ANN))["messages"]
    assert message["text"] == "a" * len(message["text"]) and len(message["text"]) <= 100
    assert message["text_truncated"] and message["original_length"] == 5000


async def test_slash_text_bots_and_system_messages_are_no_commands(
    driver: DiscordDriver, store: SqlBehaviorStore
) -> None:
    await consent(driver, "ann", "personalize")
    answered = len(driver.api.calls)

    await driver.say("ann", "/forget this typo", message_id=7)  # typed text: slash commands are interactions
    robot = {"id": "77", "username": "robot", "discriminator": "0", "avatar": None, "bot": True}
    await driver.deliver("MESSAGE_CREATE", driver.message("ann", 8, "beep", author=robot))
    await driver.deliver("MESSAGE_CREATE", driver.message("ann", 9, "", type=6))  # "ann pinned a message"

    assert len(driver.api.calls) == answered  # nothing was answered
    assert [item.text for item in await store.recent_history(ANN, 10)] == ["/forget this typo"]


async def test_edits_follow_but_link_previews_do_not_and_bulk_deletes_go(
    driver: DiscordDriver, store: SqlBehaviorStore
) -> None:
    await consent(driver, "ann", "personalize")
    await driver.say("ann", "see https://example.org", message_id=1)
    await driver.say("ann", "bye", message_id=2)

    preview = {"embeds": [{"type": "link", "url": "https://example.org"}], "edited_timestamp": None}
    await driver.deliver("MESSAGE_UPDATE", driver.message("ann", 1, "a stale text", **preview))
    assert [item.text for item in await store.recent_history(ANN, 10)] == ["see https://example.org", "bye"]

    await driver.edit("ann", 99, "never stored")  # an edit of a message the bot never kept
    await driver.deliver(
        "MESSAGE_DELETE_BULK", {"ids": ["1", "2"], "channel_id": CHAT, "guild_id": str(GUILD_ID)}
    )
    assert await store.recent_history(ANN, 10) == []


# --- start-up -------------------------------------------------------------------------------


async def test_commands_sync_to_the_test_guild_when_one_is_set(driver: DiscordDriver) -> None:
    synced = await sync_commands(driver.client.tree, GUILD_ID)

    [put] = calls(driver, "PUT", "/applications/{application_id}/guilds/{guild_id}/commands")
    assert put.url.endswith(f"/applications/{APPLICATION_ID}/guilds/{GUILD_ID}/commands")
    names = {command["name"]: command for command in put.payload}
    assert set(names) == {
        "sticker",
        "start",
        "consent",
        "privacy",
        "export",
        "forget",
        "about",
        "help",
        "stats",
        "retrain",
    }
    assert (
        int(names["retrain"]["default_member_permissions"]) == 8
    )  # administrator: a hint; PMG_ADMINS decides
    assert names["sticker"]["default_member_permissions"] is None
    assert {command.guild_id for command in synced} == {GUILD_ID}

    await sync_commands(driver.client.tree, None)
    assert calls(driver, "PUT", "/applications/{application_id}/commands")


@pytest.fixture
def discord_rest(monkeypatch: pytest.MonkeyPatch) -> FakeDiscordApi:
    """The fake API behind every client's REST calls, for clients running_discord builds itself."""
    api = FakeDiscordApi()

    async def request(http: HTTPClient, route: Route, **kwargs: Any) -> Any:
        return await api.rest(route, **kwargs)

    monkeypatch.setattr(HTTPClient, "request", request)
    return api


async def test_start_up_without_a_token_or_with_a_rejected_one_says_what_to_fix(
    bot: StickerBot, discord_rest: FakeDiscordApi
) -> None:
    with pytest.raises(DiscordStartError, match="set PMG_DISCORD_TOKEN"):
        async with running_discord(Settings(), bot):
            pass

    discord_rest.failures["GET /users/@me"] = 401
    with pytest.raises(DiscordStartError, match="Discord rejected PMG_DISCORD_TOKEN"):
        async with running_discord(Settings(discord_token="not-a-token"), bot):
            pass


async def test_start_up_without_the_message_content_intent_says_where_to_enable_it(
    bot: StickerBot, discord_rest: FakeDiscordApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def gateway_refusing_the_intent(client: discord.Client, **params: Any) -> DiscordWebSocket:
        """Discord's gateway, which closes with 4014 when a privileged intent is not enabled."""
        raise ConnectionClosed(SimpleNamespace(close_code=4014), shard_id=None)  # type: ignore[arg-type]

    monkeypatch.setattr(DiscordWebSocket, "from_client", gateway_refusing_the_intent)
    with pytest.raises(DiscordStartError, match="Message Content Intent"):
        async with running_discord(Settings(discord_token="a-token"), bot):
            pass
