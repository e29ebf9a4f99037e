"""The Telegram adapter against the fake Bot API over HTTP: polling end to end, a 429 honoured, private
files, sticker downloads (capped, optional, validated), input that is not what it seems, and one user's
flood or late button press handled without harm to anyone."""

from __future__ import annotations

import asyncio
import io
import logging
import socket
import time
from typing import Any

import aiohttp
import pytest
from PIL import Image

from adapters.store.behavior_store import SqlBehaviorStore
from adapters.telegram.app import SLOW_DOWN, TelegramStartError, running_telegram
from adapters.telegram.update_guard import readable
from adapters.telegram.update_order import MAX_WAITING_UPDATES
from bot.chat import MAX_STICKER_BYTES
from bot.chat_commands import StickerBot
from bot.identity import Platform
from chat_drivers import USERS, key, last
from telegram_fake import (
    GROUP,
    FakeBotApi,
    TelegramDriver,
    button_press,
    message,
    sticker_message,
    text_message,
    user,
    webp_image,
)

ANN = key(Platform.TELEGRAM, "ann")


@pytest.fixture
def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_polling_end_to_end_a_user_chats_and_gets_a_webp_sticker(
    bot: StickerBot, store: SqlBehaviorStore
) -> None:
    async with FakeBotApi().serving() as api, running_telegram(api.settings(), bot, poll_timeout=1):
        await api.push(api.update(callback_query=button_press("ann", "consent:all")))
        await api.push(api.update(message=text_message("ann", "frogs are the best", 1)))
        await api.push(api.update(message=sticker_message(api, "ann", "🐸", 2, webp_image())))
        await api.wait_for("getFile")
        await api.push(api.update(message=text_message("ann", "/sticker@pmg_test_bot we won!!", 3)))
        sent = await api.wait_for("sendSticker")

    assert [c.method for c in api.calls][:2] == ["getMe", "setMyCommands"]
    assert "sticker" in {command["command"] for command in api.called("setMyCommands")[0].params["commands"]}
    image = Image.open(io.BytesIO(sent.upload or b""))
    assert (image.format, image.size, sent.params["chat_id"]) == ("WEBP", (512, 512), GROUP)
    assert sent.params["reply_parameters"]["message_id"] == 3  # answers the /sticker it was asked with
    history = await store.recent_history(ANN, 10)
    assert [item.kind for item in history[:2]] == ["message", "sticker"]
    assert history[1].image_sha256 is not None  # downloaded: ann consented to training
    assert history[1].sticker is not None and history[1].sticker.set_title == "FrogFriends"


async def test_a_malformed_update_is_skipped_and_polling_goes_on(
    bot: StickerBot, caplog: pytest.LogCaptureFixture
) -> None:
    async with FakeBotApi().serving() as api, running_telegram(api.settings(), bot, poll_timeout=1):
        await api.push(api.update(message={"text": "no date, no chat, no sender"}))
        await api.push(api.update(message=text_message("ann", "/privacy", 2)))
        reply = await api.wait_for("sendMessage", within_s=10)
    assert "/forget" in reply.params["text"]
    assert any("skipped, it does not parse" in record.getMessage() for record in caplog.records)


def test_an_unparseable_update_is_logged_by_id_and_kind_without_its_text(
    caplog: pytest.LogCaptureFixture,
) -> None:
    update = {"update_id": 4242, "message": {"text": "my diary: zebra-quokka-7"}}  # no date, chat, sender
    with caplog.at_level(logging.DEBUG):
        assert readable(update) == {"update_id": 4242}
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "zebra-quokka" not in logged
    assert "4242" in logged and "['message']" in logged


async def test_a_429_is_retried_after_its_retry_after(bot: StickerBot) -> None:
    async with TelegramDriver.started(bot) as driver:
        driver.api.rate_limit("sendMessage", retry_after=1)
        await driver.command("ann", "privacy")
    first, second = driver.api.called("sendMessage")
    assert second.at - first.at >= 1.0
    assert "/forget" in last(driver, "text").text


async def test_export_in_a_group_goes_to_the_private_chat_or_says_how(bot: StickerBot) -> None:
    async with TelegramDriver.started(bot) as driver:
        await driver.command("ann", "export")
        [document] = driver.api.called("sendDocument")
        assert document.params["chat_id"] == ANN.external_id or document.params["chat_id"] == int(
            ANN.external_id
        )
        assert "private chat" in last(driver, "text").text

        driver.api.started_users.discard(int(ANN.external_id))
        await driver.command("ann", "export")
        assert len(driver.api.called("sendDocument")) == 2  # tried, refused by Telegram
        assert "open a chat with me" in last(driver, "text").text


async def test_export_in_the_private_chat_is_sent_right_there(bot: StickerBot) -> None:
    async with TelegramDriver.started(bot) as driver:
        private = int(ANN.external_id)  # a private chat's id is the user's id
        await driver.deliver(message=text_message("ann", "/export", 1, chat_id=private))
    [document] = driver.api.called("sendDocument")
    assert document.params["chat_id"] == private and document.filename == "pmg-stickers-export.zip"
    assert not driver.api.called("sendMessage")  # no "sent it privately" note in a private chat


async def test_a_pressed_choice_loses_its_buttons_but_not_to_a_bystander(
    bot: StickerBot, store: SqlBehaviorStore
) -> None:
    choice = f"consent:all:{ANN.external_id}"
    async with TelegramDriver.started(bot) as driver:
        await driver.command("ann", "start")
        await driver.press("ben", choice)  # in the group, someone else presses ann's button
        [refused] = driver.api.called("answerCallbackQuery")
        assert refused.params["show_alert"] is True and "someone else" in refused.params["text"]
        assert not driver.api.called("editMessageReplyMarkup")  # ann's buttons stay for ann
        assert not (await store.get_consent(key(Platform.TELEGRAM, "ben"))).personalize

        await driver.press("ann", choice)
    assert len(driver.api.called("answerCallbackQuery")) == 2
    assert driver.api.called("editMessageReplyMarkup")
    assert (await store.get_consent(ANN)).train


async def test_a_button_pressed_too_late_to_answer_still_acts(
    bot: StickerBot, store: SqlBehaviorStore
) -> None:
    async with TelegramDriver.started(bot) as driver:
        await driver.command("ann", "start")
        driver.api.failures["answerCallbackQuery"] = (
            400,
            "Bad Request: query is too old and response timeout expired or query id is invalid",
        )
        [action] = [
            button.action
            for sent in driver.sent
            for button in sent.buttons
            if button.action.startswith("consent:all")  # with its owner's id, once buttons name one
        ]
        await driver.press("ann", action)
    assert driver.api.called("answerCallbackQuery")  # tried, refused
    consent = await store.get_consent(ANN)
    assert consent.personalize and consent.train
    assert last(driver, "text").text.startswith("Saved.")


async def test_one_users_flood_waits_in_their_own_queue_and_stalls_nobody_else(
    bot: StickerBot,
    store: SqlBehaviorStore,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ann_chat, ben_chat = USERS["ann"], USERS["ben"]  # private chats: a private chat's id is its user's
    await store.set_consent(ANN, personalize=True, train=False)
    release = asyncio.Event()
    request = bot.service.request

    async def slow_request(*args: Any, **kwargs: Any) -> Any:
        await release.wait()  # stands in for a diffusion run that takes minutes
        return await request(*args, **kwargs)

    monkeypatch.setattr(bot.service, "request", slow_request)
    flood = [f"flood {n}" for n in range(1, 301)]
    async with TelegramDriver.started(bot) as driver:
        await driver.application.start()
        try:
            await driver.enqueue(message=text_message("ann", "/sticker we won", 1, chat_id=ann_chat))
            for message_id, text in enumerate(flood, start=2):
                await driver.enqueue(message=text_message("ann", text, message_id, chat_id=ann_chat))
            asked = time.monotonic()
            await driver.enqueue(message=text_message("ben", "/start", 1, chat_id=ben_chat))
            await driver.api.wait_for("sendMessage", within_s=1, chat_id=ben_chat)
            answered_s = time.monotonic() - asked
        finally:
            release.set()
            await driver.application.stop()  # waits for ann's queue to drain
    assert answered_s < 1
    assert driver.api.called("sendSticker", chat_id=ann_chat)
    history = await store.recent_history(ANN, len(flood) + 10)
    assert [item.text for item in history] == flood[:MAX_WAITING_UPDATES]  # in order; the rest dropped
    told = [
        call
        for call in driver.api.called("sendMessage", chat_id=ann_chat)
        if call.params["text"] == SLOW_DOWN
    ]
    assert len(told) == 1
    logged = [record.getMessage() for record in caplog.records]
    assert sum("dropped" in line for line in logged) == len(flood) - MAX_WAITING_UPDATES
    assert not any("flood" in line for line in logged)


@pytest.mark.parametrize(
    ("case", "image", "size_announced"),
    [
        ("no file on the server", None, 100),
        ("not an image", b"%PDF-1.4 not a sticker", 100),
        ("over the cap", webp_image(), MAX_STICKER_BYTES + 1),
    ],
)
async def test_a_sticker_without_a_usable_file_is_kept_without_its_image(
    bot: StickerBot, store: SqlBehaviorStore, case: str, image: bytes | None, size_announced: int
) -> None:
    await store.set_consent(ANN, personalize=True, train=True)
    async with TelegramDriver.started(bot) as driver:
        update = sticker_message(driver.api, "ann", "🐸", 1, image)
        update["sticker"]["file_size"] = size_announced
        await driver.deliver(message=update)
        downloads = driver.api.called("getFile")
    [use] = await store.recent_history(ANN, 10)
    assert use.kind == "sticker" and use.image_sha256 is None, case
    assert (not downloads) == (case == "over the cap")  # the cap is checked before any download


async def test_an_animated_sticker_keeps_its_still_thumbnail(
    bot: StickerBot, store: SqlBehaviorStore
) -> None:
    await store.set_consent(ANN, personalize=True, train=True)
    async with TelegramDriver.started(bot) as driver:
        update = sticker_message(driver.api, "ann", "🐸", 1, None)
        thumbnail = webp_image((200, 80, 80))
        driver.api.files["thumb-1"] = thumbnail
        thumb = {"file_id": "thumb-1", "file_unique_id": "t1", "width": 128, "height": 128}
        update["sticker"] |= {"is_animated": True, "thumbnail": thumb}
        await driver.deliver(message=update)
    [use] = await store.recent_history(ANN, 10)
    assert use.image_sha256 is not None and await store.read_blob(use.image_sha256) == thumbnail


async def test_emoji_in_text_count_as_sticker_uses_and_files_without_caption_are_ignored(
    bot: StickerBot, store: SqlBehaviorStore
) -> None:
    await store.set_consent(ANN, personalize=True, train=False)
    async with TelegramDriver.started(bot) as driver:
        await driver.deliver(message=text_message("ann", "so happy 😸🎉", 1))
        document = {"file_id": "d1", "file_unique_id": "d1", "file_name": "notes.pdf"}
        await driver.deliver(message=message(GROUP, user("ann"), 2, document=document))
        channel_post = {**text_message("ann", "from a channel", 3), "from": None}
        await driver.deliver(message={k: v for k, v in channel_post.items() if k != "from"})
    history = await store.recent_history(ANN, 10)
    assert [(item.kind, item.text or (item.sticker and item.sticker.emoji)) for item in history] == [
        ("message", "so happy"),
        ("sticker", "😸"),
        ("sticker", "🎉"),
    ]


async def test_unknown_commands_get_the_command_list_and_other_bots_commands_are_left_alone(
    bot: StickerBot,
) -> None:
    async with TelegramDriver.started(bot) as driver:
        await driver.command("ann", "frobnicate")
        assert "I don't know /frobnicate" in last(driver, "text").text
        assert "/sticker" in last(driver, "text").text
        answered = len(driver.api.called("sendMessage"))
        await driver.deliver(message=text_message("ann", "/start@SomeOtherBot", 7))
        assert len(driver.api.called("sendMessage")) == answered
        await driver.deliver(message=text_message("ann", "/privacy@PMG_test_bot", 8))
        assert "/forget" in last(driver, "text").text


async def test_a_rejected_token_is_a_clear_error(bot: StickerBot) -> None:
    async with FakeBotApi().serving() as api:
        settings = api.settings(telegram_token="999:wrong")
        with pytest.raises(TelegramStartError, match="rejected PMG_TELEGRAM_TOKEN"):
            async with running_telegram(settings, bot):
                pass
    started = time.monotonic()
    with pytest.raises(TelegramStartError, match="PMG_TELEGRAM_TOKEN"):
        async with running_telegram(api.settings(telegram_token=None), bot):
            pass
    assert time.monotonic() - started < 5


async def test_webhook_mode_takes_updates_only_with_the_secret(bot: StickerBot, unused_port: int) -> None:
    async with FakeBotApi().serving() as api:
        settings = api.settings(
            telegram_webhook_url="https://bot.example.org/hooks/pmg",
            telegram_webhook_port=unused_port,
            telegram_webhook_secret="s3cret_token",
        )
        async with running_telegram(settings, bot), aiohttp.ClientSession() as http:
            [registered] = api.called("setWebhook")
            assert registered.params["url"] == "https://bot.example.org/hooks/pmg"
            assert registered.params["secret_token"] == "s3cret_token"
            hook = f"http://127.0.0.1:{unused_port}/hooks/pmg"
            update = api.update(message=text_message("ann", "/privacy", 1))

            forged = await http.post(hook, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "guess"})
            assert forged.status == 403
            genuine = await http.post(
                hook, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret_token"}
            )
            assert genuine.status == 200
            reply = await api.wait_for("sendMessage", within_s=10)
    assert "/forget" in reply.params["text"] and len(api.called("sendMessage")) == 1
