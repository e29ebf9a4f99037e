"""🔄 Another and 🎨 Choose under a sticker, through the bot's use cases on the in-memory platform: the
real offline stage 2, a scripted stage 1 that counts the LLM's questions. Buttons live on in the store
(a restarted bot answers them), answer only their owner, and say politely when their sticker is gone."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from adapters.store.behavior_store import SqlBehaviorStore
from adapters.store.tables import Generation
from bot.behavior import FeedbackEvent
from bot.chat import Button, IncomingMessage, IncomingSticker
from bot.chat_commands import StickerBot
from bot.composition import running_service
from bot.feedback_report import feedback_report
from bot.identity import UserKey
from bot.personal_alpha import BOUNDS, MIN_CHOICES, personal_alpha
from bot.settings import Settings
from bot.sticker_choices import GONE
from bot.stickers import StickerJob
from memory_platform import MemoryPlatform
from pmg_engine.behaviors import StickerSent
from pmg_engine.keywords import KeywordEngine
from pmg_engine.offline_generator import OfflineGenerator
from pmg_engine.preferences import PreferenceExtractor
from pmg_engine.safety import KeywordDenyList, NsfwGate
from pmg_engine.scoring import TextScorer
from pmg_engine.stickers import StickerMaker
from scripted_llm import FixedMood, ScriptedLLM, by_question

ANN = UserKey.of("console", "ann")
BEN = UserKey.of("console", "ben")
CHAT = "chat-1"
WEIGHT_SETS = [(0.0, 4.0), (1.0, 3.0), (2.0, 2.0), (3.0, 1.0), (4.0, 0.0)]


class CountingLLM(ScriptedLLM):
    """The scripted LLM, counting the conversations it was asked to answer."""

    questions = 0

    def generate(self, conversations, *, max_new_tokens: int = 24):  # type: ignore[no-untyped-def]
        self.questions += len(conversations)
        return super().generate(conversations, max_new_tokens=max_new_tokens)


@pytest.fixture
def llm_calls() -> CountingLLM:
    return CountingLLM(by_question({"character": "frog"}, default="big grin"))


@pytest.fixture
async def make_bot(
    store: SqlBehaviorStore, minilm_scorer: TextScorer, llm_calls: CountingLLM
) -> AsyncIterator[Any]:
    """Bots over one store and one running service: a second bot is the first one restarted."""
    stage1 = KeywordEngine(llm_calls, FixedMood("joy"), PreferenceExtractor(llm_calls))  # type: ignore[arg-type]
    stage2 = StickerMaker(OfflineGenerator(), minilm_scorer, gate=NsfwGate(), deny_list=KeywordDenyList())
    settings = Settings(sticker_cooldown_s=0)
    job = StickerJob("offline", 10, settings.weight_sets, settings.seed, stage1.model_name)
    async with running_service(stage1, stage2, settings) as service:
        yield lambda: StickerBot(store, service, settings, job, about="offline")


def says(user: UserKey, text: str, *stickers: str, message_id: str | None = None) -> IncomingMessage:
    async def no_image() -> bytes | None:
        return None

    sent = [IncomingSticker(StickerSent(e), no_image) for e in stickers]
    return IncomingMessage(user, CHAT, text, message_id, sent)  # type: ignore[arg-type]


async def consenting(bot: StickerBot, platform: MemoryPlatform, user: UserKey) -> None:
    await bot.on_button(platform, user, CHAT, f"consent:personalize:{user.external_id}")
    await bot.dispatch(platform, says(user, "frogs!", "🐸", "🐸", message_id=f"{user.external_id}-1"))


async def with_a_sticker(make_bot: Any) -> tuple[StickerBot, MemoryPlatform]:
    """A bot and the chat where a consenting ANN has just been sent a sticker."""
    bot, platform = make_bot(), MemoryPlatform()
    await consenting(bot, platform, ANN)
    await bot.dispatch(platform, says(ANN, "/sticker we won!!"))
    return bot, platform


def button(buttons: list[Button], label: str) -> str:
    return next(b.action for b in buttons if b.label == label)


async def feedback(store: SqlBehaviorStore, user: UserKey) -> list[dict[str, Any]]:
    return (await store.export_user(user))["feedback"]


async def test_a_recorded_sticker_comes_with_another_and_choose(
    make_bot: Any, store: SqlBehaviorStore
) -> None:
    bot, platform = make_bot(), MemoryPlatform()
    await consenting(bot, platform, ANN)

    await bot.dispatch(platform, says(ANN, "/sticker we won!!"))

    sticker = platform.last("sticker")
    assert [b.label for b in sticker.buttons] == ["🔄 Another", "🎨 Choose"]
    [generation] = (await store.export_user(ANN))["generations"]
    [sent] = await feedback(store, ANN)
    assert (sent["kind"], sent["candidate_index"]) == ("sent", generation["chosen_index"])
    assert sent["weights"] == generation["weight_sets"][generation["chosen_index"]]


async def test_another_asks_the_llm_nothing_and_draws_new_seeds(
    make_bot: Any, store: SqlBehaviorStore, llm_calls: CountingLLM
) -> None:
    bot, platform = await with_a_sticker(make_bot)
    asked = llm_calls.questions

    await bot.on_button(platform, ANN, CHAT, button(platform.last("sticker").buttons, "🔄 Another"))

    assert llm_calls.questions == asked  # same keywords, mood and target: no question again
    first, second = (await store.export_user(ANN))["generations"]
    assert second["preference_keywords"] == first["preference_keywords"]
    assert second["target_keywords"] == first["target_keywords"] and second["mood"] == first["mood"]
    old_seeds, new_seeds = ([c["seed"] for c in g["candidates"]] for g in (first, second))
    assert min(new_seeds) == max(old_seeds) + 1
    assert len(platform.sent_of("sticker")) == 2
    assert [f["kind"] for f in await feedback(store, ANN)] == ["sent", "sent", "another"]


async def test_choose_shows_every_candidate_and_sends_the_one_picked(
    make_bot: Any, store: SqlBehaviorStore
) -> None:
    bot, platform = await with_a_sticker(make_bot)

    await bot.on_button(platform, ANN, CHAT, button(platform.last("sticker").buttons, "🎨 Choose"))
    sheet = platform.last("image")
    assert [b.label for b in sheet.buttons] == ["1", "2", "3", "4", "5"]
    assert sheet.data.startswith(b"\x89PNG")

    await bot.on_button(platform, ANN, CHAT, button(sheet.buttons, "4"))
    picked = platform.last("sticker")
    assert picked.data.startswith(b"RIFF") and [b.label for b in picked.buttons] == [
        "🔄 Another",
        "🎨 Choose",
    ]
    [generation] = (await store.export_user(ANN))["generations"]
    kept = {c["candidate_index"]: c["sha256"] for c in (await store.export_user(ANN))["candidate_images"]}
    assert sorted(kept) == [0, 1, 2, 3, 4] and kept[generation["chosen_index"]]
    chosen = (await feedback(store, ANN))[-1]
    assert (chosen["kind"], chosen["candidate_index"], chosen["weights"]) == ("chosen", 3, [3.0, 1.0])


async def test_a_user_without_consent_gets_a_sticker_without_buttons_and_nothing_kept(
    make_bot: Any, store: SqlBehaviorStore
) -> None:
    bot, platform = make_bot(), MemoryPlatform()
    await bot.dispatch(platform, says(BEN, "/sticker we won!!"))

    assert platform.last("sticker").buttons == []
    assert (await store.export_user(BEN))["user"] is None
    assert await store.blob_hashes() == set()


async def test_buttons_work_after_a_restart_and_only_for_their_owner(make_bot: Any) -> None:
    bot, platform = await with_a_sticker(make_bot)
    choose = button(platform.last("sticker").buttons, "🎨 Choose")

    await bot.on_button(platform, BEN, CHAT, choose)
    assert "for someone else" in platform.last("text").text

    restarted = make_bot()
    await restarted.on_button(platform, ANN, CHAT, choose)
    assert [b.label for b in platform.last("image").buttons] == ["1", "2", "3", "4", "5"]


async def test_an_old_or_deleted_sticker_is_gone_politely(make_bot: Any, store: SqlBehaviorStore) -> None:
    bot, platform = await with_a_sticker(make_bot)
    another, choose = (b.action for b in platform.last("sticker").buttons)

    async with store.write_transaction() as session:
        await session.execute(update(Generation).values(created_at=datetime.now(UTC) - timedelta(days=31)))
    await bot.on_button(platform, ANN, CHAT, choose)
    assert platform.last("text").text == GONE

    await bot.on_button(platform, ANN, CHAT, f"consent:none:{ANN.external_id}")  # deletes the generations
    await bot.on_button(platform, ANN, CHAT, another)
    assert platform.last("text").text == GONE and len(platform.sent_of("sticker")) == 1
    await bot.on_button(platform, ANN, CHAT, "pick:not-a-number:ann")
    assert platform.last("text").text == GONE


async def test_export_holds_the_feedback_and_forget_removes_it_with_every_candidate(
    make_bot: Any, store: SqlBehaviorStore
) -> None:
    bot, platform = await with_a_sticker(make_bot)
    await bot.on_button(platform, ANN, CHAT, button(platform.last("sticker").buttons, "🎨 Choose"))
    await bot.on_button(platform, ANN, CHAT, button(platform.last("image").buttons, "2"))

    await bot.dispatch(platform, says(ANN, "/export"))
    with zipfile.ZipFile(io.BytesIO(platform.last("file").data)) as archive:
        names = archive.namelist()
        exported = archive.read("pmg-stickers-export.json").decode()
    assert '"kind": "chosen"' in exported and '"candidate_images"' in exported
    assert len([n for n in names if n.startswith("images/")]) == 5  # every candidate's image, chosen included

    await bot.dispatch(platform, says(ANN, "/forget"))
    await bot.on_button(platform, ANN, CHAT, button(platform.last("text").buttons, "Yes, delete it all"))
    assert (await store.export_user(ANN))["user"] is None
    assert await store.blob_hashes() == set()


def test_personal_alpha_moves_only_after_enough_choices_and_stays_bounded() -> None:
    assert personal_alpha([(4.0, 0.0)] * (MIN_CHOICES - 1), 0.5) == 0.5
    assert personal_alpha([(4.0, 0.0)] * 3, 0.5) == round((4 * 0.5 + 3 * 1.0) / 7, 3)  # 0.714
    assert personal_alpha([(0.0, 4.0)] * 3, 0.5) == round((4 * 0.5) / 7, 3)  # 0.286
    assert personal_alpha([(4.0, 0.0)] * 100, 0.5) == BOUNDS[1]
    assert personal_alpha([(0.0, 4.0)] * 100, 0.5) == BOUNDS[0]
    assert personal_alpha([(1.0, 3.0), (3.0, 1.0), (2.0, 2.0)], 0.5) == 0.5  # no lean, no change


async def test_a_users_choices_set_their_alpha_and_about_explains_it(
    make_bot: Any, store: SqlBehaviorStore
) -> None:
    bot, platform = make_bot(), MemoryPlatform()
    await consenting(bot, platform, ANN)
    for _ in range(MIN_CHOICES):
        await bot.dispatch(platform, says(ANN, "/sticker we won!!"))
        await bot.on_button(platform, ANN, CHAT, button(platform.last("sticker").buttons, "🎨 Choose"))
        await bot.on_button(platform, ANN, CHAT, button(platform.last("image").buttons, "5"))  # 4:0

    await bot.dispatch(platform, says(ANN, "/sticker again!"))

    alphas = [g["alpha"] for g in (await store.export_user(ANN))["generations"]]
    assert alphas[:MIN_CHOICES] == [0.5] * MIN_CHOICES  # before the third choice: the global α
    assert alphas[-1] == round((4 * 0.5 + MIN_CHOICES) / (4 + MIN_CHOICES), 3)
    await bot.dispatch(platform, says(ANN, "/about"))
    assert "lean to your favourite characters" in platform.last("text").text
    assert "3 stickers you chose" in platform.last("text").text


def test_the_feedback_report_counts_choices_agreement_alpha_and_rerolls() -> None:
    def event(user: int, kind: str, index: int | None = None, z_pick: int = 2) -> FeedbackEvent:
        weights = WEIGHT_SETS[index] if index is not None else None
        return FeedbackEvent(user, kind, index, weights, z_pick, 0.5)

    events = [
        *(event(1, "sent", 2) for _ in range(4)),
        event(1, "another"),
        *(event(1, "chosen", 4) for _ in range(3)),  # user 1 leans to their character
        event(2, "sent", 2),
        event(2, "chosen", 2),  # z's own pick
    ]
    report = feedback_report(events, 0.5)

    assert report["counts"] == {"sent": 5, "another": 1, "chosen": 4, "pack": 0, "inline": 0}
    assert report["choices_per_weight_set"] == {"2:2": 1, "4:0": 3}
    assert report["z_pick_chosen_rate"] == 0.25 and report["reroll_rate"] == 0.2
    assert report["alpha"]["users_with_personal_alpha"] == 1
    assert report["alpha"]["median"] == round((4 * 0.5 + 3) / 7, 3)


def test_pmg_eval_feedback_after_a_scripted_chat(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PMG_STICKER_COOLDOWN_S", "0")
    # consent, a message, /sticker, 🎨 Choose, pick 5 (4:0), then 🔄 Another on the picked one
    lines = ["/start", "1", "🐸 frogs are the best", "/sticker we won", "2", "5", "1", "/quit"]
    chat = subprocess.run(
        [sys.executable, "-m", "bot.cli", "chat", "--user", "scripted"],
        input="\n".join(lines) + "\n",
        capture_output=True,
        encoding="utf-8",
        timeout=1200,
    )
    assert chat.returncode == 0, chat.stdout + chat.stderr
    assert "(picture)" in chat.stdout and chat.stdout.count("(sticker)") == 3

    report = subprocess.run(
        [sys.executable, "-m", "bot.cli", "eval", "feedback", "--json"],
        capture_output=True,
        encoding="utf-8",
        timeout=300,
    )
    assert report.returncode == 0, report.stderr
    figures = json.loads(report.stdout)
    assert figures["counts"] == {"sent": 2, "another": 1, "chosen": 1, "pack": 0, "inline": 0}
    assert figures["choices_per_weight_set"] == {"4:0": 1} and figures["reroll_rate"] == 0.5
