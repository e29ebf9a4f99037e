"""The bot's use cases against the in-memory platform: consent gates recording, /sticker answers with a
sticker, /export and /forget keep their promises, admin commands are admin-only, bad input is handled."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from adapters.store.behavior_store import SqlBehaviorStore
from bot.chat import IncomingMessage, IncomingSticker
from bot.chat_commands import MAX_STICKERS_PER_MESSAGE, StickerBot
from bot.composition import open_store
from bot.identity import UserKey
from bot.service import StickerBackend
from bot.settings import Settings
from bot.sticker_engine import EngineOutcome, EngineRequest
from memory_platform import MemoryPlatform
from pmg_engine.behaviors import StickerSent

ANN = UserKey.of("console", "ann")
ADMIN = UserKey.of("console", "root")


def export_json(platform: MemoryPlatform) -> dict[str, Any]:
    """The JSON inside the last /export zip."""
    with zipfile.ZipFile(io.BytesIO(platform.last("file").data)) as archive:
        return json.loads(archive.read("pmg-stickers-export.json"))


def says(user: UserKey, text: str, *stickers: str, message_id: str | None = None) -> IncomingMessage:
    async def frog_png() -> bytes:
        buffer = io.BytesIO()
        Image.new("RGBA", (64, 64), (80, 200, 80, 255)).save(buffer, "PNG")
        return buffer.getvalue()

    return IncomingMessage(
        user, "chat-1", text, message_id, [IncomingSticker(StickerSent(e), frog_png) for e in stickers]
    )


async def test_nothing_is_recorded_before_consent_and_images_only_with_training_consent(
    bot: StickerBot, store: SqlBehaviorStore
) -> None:
    platform = MemoryPlatform()
    await bot.dispatch(platform, says(ANN, "hello", "🐸", message_id="1"))
    assert await store.recent_history(ANN, 10) == []

    await bot.dispatch(platform, says(ANN, "/start"))
    assert [b.action for b in platform.last("text").buttons] == [
        "consent:all:ann",
        "consent:personalize:ann",
        "consent:none:ann",
    ]
    await bot.on_button(platform, ANN, "chat-1", "consent:personalize")
    await bot.dispatch(platform, says(ANN, "hi frog", "🐸", message_id="2"))
    history = await store.recent_history(ANN, 10)
    assert [item.kind for item in history] == ["message", "sticker"]
    assert history[1].sticker is not None and history[1].image_sha256 is None  # no training consent: no image

    await bot.on_button(platform, ANN, "chat-1", "consent:all")
    await bot.dispatch(platform, says(ANN, "", "🐸", message_id="3"))
    assert (await store.recent_history(ANN, 10))[-1].image_sha256 is not None


async def test_sticker_answers_with_a_webp_after_progress(bot: StickerBot, store: SqlBehaviorStore) -> None:
    platform = MemoryPlatform()
    await bot.on_button(platform, ANN, "chat-1", "consent:personalize")
    await bot.dispatch(platform, says(ANN, "", "🐸", "🐸", message_id="1"))

    await bot.dispatch(platform, says(ANN, "/sticker we won the cup!!"))

    sticker = platform.last("sticker")
    assert Image.open(io.BytesIO(sticker.data)).format == "WEBP"
    assert any(s.kind == "progress" for s in platform.sent)
    [generation] = (await store.export_user(ANN))["generations"]
    assert generation["preference_keywords"][0] == "frog"


async def test_sticker_without_text_uses_the_users_last_messages_or_asks(bot: StickerBot) -> None:
    platform = MemoryPlatform()
    await bot.dispatch(platform, says(ANN, "/sticker"))
    assert "Tell me what to answer" in platform.last("text").text

    await bot.on_button(platform, ANN, "chat-1", "consent:personalize")
    await bot.dispatch(platform, says(ANN, "my exam went great", message_id="7"))
    await bot.dispatch(platform, says(ANN, "/sticker"))
    assert platform.last("sticker").data


async def test_export_sends_the_users_data_and_forget_deletes_it_after_confirmation(
    bot: StickerBot, store: SqlBehaviorStore
) -> None:
    platform = MemoryPlatform()
    await bot.on_button(platform, ANN, "chat-1", "consent:all")
    await bot.dispatch(platform, says(ANN, "secret plans", message_id="1"))

    await bot.dispatch(platform, says(ANN, "/export"))
    exported = export_json(platform)
    assert [m["text"] for m in exported["messages"]] == ["secret plans"]

    await bot.dispatch(platform, says(ANN, "/forget"))
    assert [b.action for b in platform.last("text").buttons] == ["forget:yes:ann", "forget:no:ann"]
    await bot.on_button(platform, ANN, "chat-1", "forget:no:ann")
    await bot.on_button(platform, ADMIN, "chat-1", "forget:yes:ann")  # someone else pressing ann's button
    assert "for someone else" in platform.last("text").text
    assert len(await store.recent_history(ANN, 10)) == 1
    await bot.on_button(platform, ANN, "chat-1", "forget:yes:ann")
    assert await store.recent_history(ANN, 10) == []
    assert (await store.get_consent(ANN)).personalize is False


async def test_admin_commands_are_refused_to_others_and_stats_answer_admins(bot: StickerBot) -> None:
    platform = MemoryPlatform()
    await bot.dispatch(platform, says(ANN, "/stats"))
    assert "for the bot's admins" in platform.last("text").text
    await bot.dispatch(platform, says(ANN, "/retrain"))
    assert "for the bot's admins" in platform.last("text").text

    await bot.dispatch(platform, says(ADMIN, "/stats"))
    stats = platform.last("text").text
    assert "queue_length: 0" in stats and "checkpoint: none" in stats and "profile: offline" in stats


async def test_privacy_about_and_unknown_commands(bot: StickerBot) -> None:
    platform = MemoryPlatform()
    await bot.dispatch(platform, says(ANN, "/privacy"))
    assert "/forget" in platform.last("text").text and "/export" in platform.last("text").text
    await bot.dispatch(platform, says(ANN, "/about"))
    assert "CC BY-SA" in platform.last("text").text
    await bot.dispatch(platform, says(ANN, "/" + "x" * 5000))
    assert (
        platform.last("text").text.startswith("I don't know /xxxx") and len(platform.last("text").text) < 200
    )


async def test_a_huge_message_is_stored_as_a_flagged_prefix(bot: StickerBot, store: SqlBehaviorStore) -> None:
    platform = MemoryPlatform()
    await bot.on_button(platform, ANN, "chat-1", "consent:personalize")
    await bot.dispatch(platform, says(ANN, "a" * 100_000, message_id="9"))
    [item] = await store.recent_history(ANN, 10)
    assert item.text is not None and len(item.text) <= 100


async def test_a_user_waits_between_stickers(bot: StickerBot) -> None:
    platform = MemoryPlatform()
    await bot.dispatch(platform, says(ANN, "/sticker hello"))
    assert platform.last("sticker").data
    await bot.dispatch(platform, says(ANN, "/sticker again"))
    assert platform.last("text").text.startswith("Easy there! Your next sticker in")
    assert sum(s.kind == "sticker" for s in platform.sent) == 1


class HeldService:
    """The real service, each request held until the test lets it go: a way to act while it draws."""

    def __init__(self, service: StickerBackend[EngineRequest, EngineOutcome]) -> None:
        self.service = service
        self.drawing = asyncio.Event()
        self.release = asyncio.Event()
        self.requests: list[EngineRequest] = []

    async def request(self, key: Hashable, request: EngineRequest, **options: Any) -> EngineOutcome:
        self.requests.append(request)
        self.drawing.set()
        await self.release.wait()
        return await self.service.request(key, request, **options)

    def cancel(self, key: Hashable) -> bool:
        return self.service.cancel(key)

    async def stats(self) -> dict[str, object]:
        return await self.service.stats()


@pytest.mark.parametrize("withdrawal", ["consent:none", "forget:yes:ann"])
async def test_consent_withdrawn_while_drawing_drops_the_sticker_and_keeps_nothing(
    bot: StickerBot, store: SqlBehaviorStore, withdrawal: str
) -> None:
    platform = MemoryPlatform()
    await bot.on_button(platform, ANN, "chat-1", "consent:all")
    await bot.dispatch(platform, says(ANN, "", "🐸", message_id="1"))
    held = HeldService(bot.service)
    bot.service = held

    sticker = asyncio.create_task(bot.dispatch(platform, says(ANN, "/sticker we won!!")))
    await held.drawing.wait()
    await bot.on_button(platform, ANN, "chat-1", withdrawal)
    held.release.set()
    await sticker

    assert not any(s.kind == "sticker" for s in platform.sent)
    assert "withdrew or changed your consent" in platform.last("text").text
    exported = await store.export_user(ANN)
    assert exported.get("generations", []) == [] and await store.cached_preferences(ANN) is None


async def test_sticker_images_that_are_not_images_are_dropped_and_emoji_floods_capped(
    bot: StickerBot, store: SqlBehaviorStore
) -> None:
    platform = MemoryPlatform()
    await bot.on_button(platform, ANN, "chat-1", "consent:all")

    async def not_an_image() -> bytes:
        return b"<html>surprise</html>"

    flood = [IncomingSticker(StickerSent("🐸"), not_an_image)] * 500
    await bot.dispatch(platform, IncomingMessage(ANN, "chat-1", "", "5", flood))
    history = await store.recent_history(ANN, 1000)
    assert 0 < len(history) <= MAX_STICKERS_PER_MESSAGE
    assert all(item.image_sha256 is None for item in history)


async def test_a_sticker_image_over_the_stores_file_limit_is_dropped_not_fatal(
    bot: StickerBot, store: SqlBehaviorStore
) -> None:
    platform = MemoryPlatform()
    await bot.on_button(platform, ANN, "chat-1", "consent:all")
    store.max_blob_bytes = 100  # the 64-px frog PNG of `says` is about 200 bytes

    await bot.dispatch(platform, says(ANN, "", "🐸", message_id="1"))

    [use] = await store.recent_history(ANN, 10)
    assert use.kind == "sticker" and use.image_sha256 is None
    assert [s.text for s in platform.sent] == [platform.sent[0].text]  # only the consent reply, no error


async def test_the_store_opened_from_settings_keeps_their_limits(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, max_message_chars=64, max_blob_bytes=4096)
    async with await open_store(settings) as opened:
        assert (opened.max_text_chars, opened.max_blob_bytes) == (64, 4096)
        await opened.set_consent(ANN, personalize=True)
        await opened.record_message(ANN, "chat-1", "x" * 500, message_id="1")
        [item] = await opened.recent_history(ANN, 10)
        assert item.text is not None and len(item.text) <= 64
