"""Stage 1 for a /sticker request: the user's stored history in, preference keywords cached per watermark."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from bot.behavior import Behavior, CachedPreferences, Consent
from bot.identity import UserKey
from pmg_engine.behaviors import UserBehaviors

if TYPE_CHECKING:
    from bot.store import BehaviorStore
    from pmg_engine.preferences import Preferences
    from pmg_engine.understanding import Understanding


class Stage1(Protocol):
    """What the use case needs of the engine (pmg_engine.keywords.KeywordEngine)."""

    @property
    def model_name(self) -> str: ...

    def understand(
        self, users: list[UserBehaviors], cached: Sequence[Preferences | None] | None = None
    ) -> list[Understanding]: ...


def behaviors_from_history(history: list[Behavior], conversation: list[str]) -> UserBehaviors:
    """The engine's view of one user: their stickers and their own messages, oldest first."""
    return UserBehaviors(
        stickers=[item.sticker for item in history if item.kind == "sticker" and item.sticker is not None],
        messages=[item.text for item in history if item.kind == "message" and item.text not in conversation],
        conversation=conversation,
    )


@dataclass(frozen=True)
class UserContext:
    """What a request knows of its user before the engine runs: history, behaviors, valid cached k^p."""

    history: list[Behavior]
    behaviors: UserBehaviors
    cached: Preferences | None  # None: ask the LLM; Preferences([]) for a user with no history
    watermark: int


async def load_context(
    store: BehaviorStore,
    keyword_model: str,
    user: UserKey,
    conversation: list[str],
    *,
    history_items: int,
    personalize: bool = True,
) -> UserContext:
    """The user's recent history as behaviors, and their cached preference keywords when still valid
    (same history watermark, same LLM and questions). `personalize=False` (no consent): no history."""
    from pmg_engine.preferences import Preferences

    history = await store.recent_history(user, history_items) if personalize else []
    watermark = await store.behavior_watermark(user)
    cached = await store.cached_preferences(user)
    if cached is not None and (cached.watermark, cached.model) != (watermark, keyword_model):
        cached = None  # made from an older history or another model: stale
    hit = Preferences.from_cache(cached.keywords) if cached is not None else None
    if not history:
        hit = Preferences([], None)  # nothing to learn a preference from: the sticker follows the mood
    return UserContext(history, behaviors_from_history(history, conversation), hit, watermark)


async def remember_preferences(
    store: BehaviorStore,
    user: UserKey,
    context: UserContext,
    understanding: Understanding,
    keyword_model: str,
    consent: Consent,
) -> None:
    """Cache freshly made preference keywords under the watermark they came from (the store keeps them
    only if `consent`, read when the request began, still holds)."""
    if context.cached is None:
        keywords = understanding.preferences.keywords
        cached = CachedPreferences(keywords, context.watermark, keyword_model)
        await store.store_preferences(user, cached, consent_at=consent.updated_at)


async def understand_request(
    store: BehaviorStore, engine: Stage1, user: UserKey, conversation: list[str], *, history_items: int
) -> Understanding:
    """Keywords, mood and target for one request; a user whose history has not changed since their
    keywords were made gets them from the store, and the LLM is asked only about the mood's look."""
    consent = await store.get_consent(user)
    context = await load_context(
        store,
        engine.model_name,
        user,
        conversation,
        history_items=history_items,
        personalize=consent.personalize,
    )
    # The engine is CPU-bound torch work: off the event loop, so the bot keeps answering meanwhile.
    [understanding] = await asyncio.to_thread(engine.understand, [context.behaviors], [context.cached])
    await remember_preferences(store, user, context, understanding, engine.model_name, consent)
    return understanding
