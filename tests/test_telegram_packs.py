"""➕ My pack on Telegram, over the fake Bot API: the first press makes the user's sticker set, later ones
add to it; a full set starts a second one, a set the user deleted starts anew, a user who never opened a
private chat or blocked the bot is told what to do; /mypack links the sets and /forget deletes them."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import pytest

from adapters.store.behavior_store import SqlBehaviorStore
from adapters.telegram.packs import BLOCKED, OPEN_A_CHAT
from bot.behavior import SentSticker
from bot.chat_commands import StickerBot
from bot.inline_stickers import rank, start_parameter, text_of_start
from chat_drivers import USERS, key, last
from telegram_fake import BOT_USER, TelegramDriver, user

pytestmark = pytest.mark.sqlite_only
INLINE_DEADLINE_S = 2.0  # well inside the seconds Telegram waits for an inline answer


@pytest.fixture
async def telegram(bot: StickerBot) -> AsyncIterator[TelegramDriver]:
    bot.settings = bot.settings.model_copy(update={"sticker_cooldown_s": 0})
    async with TelegramDriver.started(bot) as driver:
        yield driver


async def sticker_for(driver: TelegramDriver, user: str = "ann", *, consent: bool = True) -> list[str]:
    """A recorded sticker for `user`; the actions of the buttons under it."""
    if consent:
        await driver.command(user, "start")
        await driver.press(user, f"consent:personalize:{USERS[user]}")
        await driver.say(user, "frogs!", sticker="🐸", message_id=1)
    await driver.command(user, "sticker", "we won the cup!!")
    return [b.action for b in last(driver, "sticker").buttons]


def pack_button(actions: list[str]) -> str:
    return next(action for action in actions if action.startswith("pack:"))


async def test_the_first_press_makes_the_set_and_the_next_adds_to_it(
    telegram: TelegramDriver, store: SqlBehaviorStore
) -> None:
    actions = await sticker_for(telegram)
    await telegram.press("ann", pack_button(actions))

    [created] = telegram.api.called("createNewStickerSet")
    name = created.params["name"]
    assert name.startswith("pmg_") and name.endswith(f"_by_{BOT_USER['username']}") and "__" not in name
    assert created.params["title"] == "Ann's stickers" and created.params["user_id"] == USERS["ann"]
    [item] = created.params["stickers"]
    assert item["emoji_list"] == ["😄"] and item["format"] == "static" and "frog" in item["keywords"]
    assert f"t.me/addstickers/{name}" in last(telegram, "text").text

    await telegram.press("ann", actions[0])  # 🔄 Another, then ➕ on the new sticker
    await telegram.press("ann", pack_button([b.action for b in last(telegram, "sticker").buttons]))
    [added] = telegram.api.called("addStickerToSet")
    assert added.params["name"] == name and len(telegram.api.sticker_sets[name]) == 2
    kinds = [f["kind"] for f in (await store.export_user(key(telegram.platform, "ann")))["feedback"]]
    assert kinds.count("pack") == 2
    [pack] = (await store.export_user(key(telegram.platform, "ann")))["sticker_packs"]
    assert (pack["name"], pack["stickers"]) == (name, 2)


async def test_a_full_set_starts_a_second_and_a_deleted_one_starts_anew(
    telegram: TelegramDriver, store: SqlBehaviorStore
) -> None:
    telegram.api.set_limit = 1
    actions = await sticker_for(telegram)
    await telegram.press("ann", pack_button(actions))
    await telegram.press("ann", actions[0])
    await telegram.press("ann", pack_button([b.action for b in last(telegram, "sticker").buttons]))

    first, second = (call.params["name"] for call in telegram.api.called("createNewStickerSet"))
    assert second == first.replace("_by_", "_2_by_")
    ann = key(telegram.platform, "ann")
    assert await store.packs(ann) == [first, second]

    telegram.api.sticker_sets.pop(second)  # the user deleted it in @Stickers
    telegram.api.set_limit = 120
    await telegram.press("ann", actions[1])  # 🎨 Choose, then ➕ under a picked one
    await telegram.press("ann", last(telegram, "image").buttons[2].action)
    await telegram.press("ann", pack_button([b.action for b in last(telegram, "sticker").buttons]))
    assert "started a new one" in last(telegram, "text").text
    assert await store.packs(ann) == [first, second.replace("_2_by_", "_3_by_")]


@pytest.mark.parametrize("trouble", ["never_opened_a_private_chat", "blocked_the_bot"])
async def test_a_user_the_bot_cannot_reach_is_told_what_to_do(
    telegram: TelegramDriver, store: SqlBehaviorStore, trouble: str
) -> None:
    actions = await sticker_for(telegram)
    if trouble == "blocked_the_bot":
        telegram.api.blocked_by.add(USERS["ann"])
    else:
        telegram.api.started_users.discard(USERS["ann"])

    await telegram.press("ann", pack_button(actions))

    assert last(telegram, "text").text == (BLOCKED if trouble == "blocked_the_bot" else OPEN_A_CHAT)
    ann = key(telegram.platform, "ann")
    assert await store.packs(ann) == [] and telegram.api.sticker_sets == {}
    assert "pack" not in [f["kind"] for f in (await store.export_user(ann))["feedback"]]


async def test_mypack_links_the_sets_and_forget_deletes_them(
    telegram: TelegramDriver, store: SqlBehaviorStore
) -> None:
    await telegram.command("ann", "mypack")
    assert "No pack yet" in last(telegram, "text").text
    actions = await sticker_for(telegram)
    await telegram.press("ann", pack_button(actions))
    [name] = telegram.api.sticker_sets

    await telegram.command("ann", "mypack")
    assert f"https://t.me/addstickers/{name}" in last(telegram, "text").text

    await telegram.command("ann", "forget")
    await telegram.press("ann", f"forget:yes:{USERS['ann']}")
    assert [call.params["name"] for call in telegram.api.called("deleteStickerSet")] == [name]
    assert telegram.api.sticker_sets == {}
    assert (await store.export_user(key(telegram.platform, "ann")))["user"] is None


async def test_a_user_without_consent_gets_no_buttons(telegram: TelegramDriver) -> None:
    assert await sticker_for(telegram, "ben", consent=False) == []
    [sent] = telegram.api.called("sendSticker")
    assert "reply_markup" not in sent.params or not json.dumps(sent.params["reply_markup"]).count("pack")


async def test_inline_answers_at_once_with_the_users_own_stickers_ranked_for_the_text(
    telegram: TelegramDriver, store: SqlBehaviorStore
) -> None:
    await sticker_for(telegram)  # joyful (the scripted mood), keywords "frog", "big grin", …
    file_id = telegram.api.sent_file_id(telegram.api.called("sendSticker")[-1])

    started = time.monotonic()
    await telegram.deliver(
        inline_query={"id": "iq-1", "from": user("ann"), "query": "so happy!", "offset": ""}
    )
    answered = time.monotonic() - started

    [answer] = telegram.api.called("answerInlineQuery")
    assert answered < INLINE_DEADLINE_S
    params = answer.params
    assert params["is_personal"] is True and params["cache_time"] == 10
    [result] = params["results"]
    assert (result["type"], result["sticker_file_id"]) == ("sticker", file_id)
    assert text_of_start(params["button"]["start_parameter"]) == "so happy!"

    await telegram.deliver(
        chosen_inline_result={"result_id": result["id"], "from": user("ann"), "query": "so happy!"}
    )
    kinds = [f["kind"] for f in (await store.export_user(key(telegram.platform, "ann")))["feedback"]]
    assert kinds[-1] == "inline"


async def test_inline_for_a_user_without_consent_offers_only_the_button(telegram: TelegramDriver) -> None:
    await telegram.deliver(inline_query={"id": "iq-2", "from": user("ben"), "query": "hello", "offset": ""})
    [answer] = telegram.api.called("answerInlineQuery")
    assert answer.params["results"] == [] and answer.params["button"]["text"] == "✨ Draw a new one"


async def test_the_inline_button_opens_a_chat_that_draws_the_sticker(telegram: TelegramDriver) -> None:
    parameter = start_parameter("we won the cup!! 🏆")
    await telegram.command("ben", "start", parameter)
    assert last(telegram, "sticker").data


def test_ranking_puts_the_texts_mood_and_keywords_first_and_newer_before_older() -> None:
    stickers = [
        SentSticker(3, "new-sad", "sadness", ["frog", "teary eyes"]),
        SentSticker(2, "joy", "joy", ["frog", "big grin"]),
        SentSticker(1, "old-sad", "sadness", ["cat", "frown"]),
    ]
    assert rank(stickers, "so happy 😄")[0].file_id == "joy"
    assert [s.file_id for s in rank(stickers, "i miss my cat, crying")][:2] == ["old-sad", "new-sad"]
    assert [s.file_id for s in rank(stickers, "")] == ["new-sad", "joy", "old-sad"]
    assert text_of_start(start_parameter("x" * 300)) == "x" * 45
    assert text_of_start(start_parameter("ünïcödé " * 10)) is not None
    assert len(start_parameter("ü" * 100)) <= 64 and text_of_start("not-ours") is None
