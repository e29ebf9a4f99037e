"""Stage 1 as a whole on fixed LLM answers: one batched generate call, preference keywords cached per user."""

from __future__ import annotations

from adapters.store.behavior_store import SqlBehaviorStore
from bot.identity import UserKey
from bot.personalization import understand_request
from pmg_engine.behaviors import StickerSent, UserBehaviors
from pmg_engine.keywords import KeywordEngine
from pmg_engine.preferences import PreferenceExtractor, Preferences
from scripted_llm import FixedMood, ScriptedLLM, by_question

ANSWERS = {
    "character": "frog",
    "art style": "cartoon",
    "colours": "green",
    "decorations": "hearts",
    "Mood:": "big grin, arms raised, thumbs up",
}


def engine(mood: str = "joy") -> tuple[KeywordEngine, ScriptedLLM]:
    llm = ScriptedLLM(by_question(ANSWERS))
    return KeywordEngine(llm, FixedMood(mood), PreferenceExtractor(llm)), llm  # type: ignore[arg-type]


FROG_FAN = UserBehaviors(stickers=[StickerSent("🐸")] * 3, conversation=["we won the cup!!"])
FOX_FAN = UserBehaviors(stickers=[StickerSent("🦊")] * 2, conversation=["so tired today"])


def test_all_questions_of_all_users_go_in_one_generate_call() -> None:
    stage1, llm = engine()

    results = stage1.understand([FROG_FAN, FOX_FAN], [None, Preferences.from_cache(["fox", "orange"])])

    assert len(llm.generate_calls) == 1
    [batch] = llm.generate_calls
    assert len(batch) == 4 + 2  # the frog fan's four attribute questions, both users' target questions
    assert results[0].preferences.keywords[:4] == ["frog", "cartoon", "green", "hearts"]
    assert results[1].preferences.keywords == ["fox", "orange"]  # from the cache, untouched


def test_target_keywords_are_the_mood_word_then_the_llms_look_then_defaults() -> None:
    stage1, _ = engine("joy")

    [result] = stage1.understand([FROG_FAN])

    assert result.mood.mood == "joy"
    assert result.target_keywords == ["joyful", "big grin", "arms raised", "thumbs up", "big smile"]
    assert len(result.target_keywords) == 5


async def test_unchanged_history_makes_no_preference_question(store: SqlBehaviorStore) -> None:
    stage1, llm = engine()
    user = UserKey.of("telegram", 7)
    await store.set_consent(user, personalize=True)
    for index in range(3):
        await store.record_sticker_use(user, "chat", StickerSent("🐸"), message_id=index)

    first = await understand_request(store, stage1, user, ["we won!!"], history_items=10)
    second = await understand_request(store, stage1, user, ["we won again!!"], history_items=10)

    assert [len(batch) for batch in llm.generate_calls] == [5, 1]  # then the target question alone
    assert second.preferences.keywords == first.preferences.keywords
    cached = await store.cached_preferences(user)
    assert cached is not None and cached.keywords == first.preferences.keywords

    await store.record_sticker_use(user, "chat", StickerSent("🦊"), message_id=99)
    await understand_request(store, stage1, user, ["and again"], history_items=10)

    assert [len(batch) for batch in llm.generate_calls] == [5, 1, 5]  # new behavior: asked again


async def test_only_the_users_own_history_enters_the_prompt(store: SqlBehaviorStore) -> None:
    stage1, llm = engine()
    user, other = UserKey.of("discord", 1), UserKey.of("discord", 2)
    for person in (user, other):
        await store.set_consent(person, personalize=True)
    await store.record_message(other, "guild", "OTHER PERSON'S SECRET")
    await store.record_message(user, "guild", "my own words")
    await store.record_sticker_use(user, "guild", StickerSent("🐸"))

    await understand_request(store, stage1, user, ["hello"], history_items=10)

    prompt_text = " ".join(m["content"] for prompt in llm.generate_calls[0] for m in prompt)
    assert "my own words" in prompt_text
    assert "SECRET" not in prompt_text
