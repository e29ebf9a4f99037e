"""The /sticker use case, platform-neutral: the user's context from the store → the sticker service
(stage 1 and stage 2, batched with other users) → the chosen sticker stored and the generation recorded."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from bot.behavior import GenerationRecord
from bot.identity import UserKey
from bot.personalization import load_context, remember_preferences
from bot.service import ProgressCallback, ServiceError, StickerBackend

if TYPE_CHECKING:
    from bot.sticker_engine import EngineOutcome, EngineRequest
    from bot.store import BehaviorStore
    from pmg_engine.candidates import StickerRequest, WeightSet
    from pmg_engine.sticker_result import StickerResult
    from pmg_engine.understanding import Understanding


class Stage2(Protocol):
    """What the use case needs of the engine's stage 2 (pmg_engine.stickers.StickerMaker)."""

    @property
    def models(self) -> dict[str, str]: ...

    def make(
        self, requests: list[StickerRequest], alphas: list[float], *, interrupted: Callable[[], bool] = ...
    ) -> list[StickerResult]: ...

    def use_checkpoint(self, version: str, path: Path) -> str | None: ...


class ConsentWithdrawn(ServiceError):
    def __init__(self) -> None:
        super().__init__(
            "you withdrew or changed your consent while I was drawing, so I dropped that sticker and "
            "kept nothing of it; please ask again"
        )


@dataclass(frozen=True)
class StickerReply:
    """What a platform needs to answer: the result, why it looks so, and where it was recorded."""

    understanding: Understanding
    result: StickerResult
    generation_id: int | None  # None: not recorded (the user has not consented to personalization)
    personalized: bool  # False: no history, so the sticker follows the mood alone
    seconds: float
    models: dict[str, str]  # what made it: LLM, generator, scorer, safety


@dataclass(frozen=True)
class StickerJob:
    """How stickers are made here: the profile, n history items, the weight sets, the base seed, and the
    name of the keyword model (cached preference keywords made by another are stale)."""

    profile: str
    history_items: int
    weight_sets: list[WeightSet]
    seed: int
    keyword_model: str


async def make_sticker(
    store: BehaviorStore,
    service: StickerBackend[EngineRequest, EngineOutcome],
    job: StickerJob,
    user: UserKey,
    conversation: list[str],
    *,
    alpha: float,
    seed: int | None = None,
    chat: str | None = None,
    progress: ProgressCallback | None = None,
    deadline_s: float | None = None,
    context_message_ids: list[int] | None = None,
) -> StickerReply:
    """One sticker for `user` in reply to `conversation`, through the service (queued, batched with
    other users'); with the user's consent, the generation is recorded and the sticker kept.
    `context_message_ids`: the conversation is these stored messages (recorded by id, not copied).
    Raises the service's errors (busy, cancelled, deadline) for the platform to word, and
    ConsentWithdrawn when the user's consent changed while a personalized sticker was drawn."""
    from bot.sticker_engine import EngineRequest

    started = time.perf_counter()
    consent = await store.get_consent(user)  # personalization only with the user's consent
    context = await load_context(
        store,
        job.keyword_model,
        user,
        conversation,
        history_items=job.history_items,
        personalize=consent.personalize,
    )
    promoted = await store.promoted_checkpoint()
    request = EngineRequest(
        behaviors=context.behaviors,
        cached=context.cached,
        alpha=alpha,
        seed=job.seed if seed is None else seed,
        personalized=bool(context.history),
        checkpoint=(promoted[0], await store.blob_file(promoted[1])) if promoted else None,
    )
    outcome = await service.request(user, request, progress=progress, deadline_s=deadline_s)
    understanding, result = outcome.understanding, outcome.result
    seconds = time.perf_counter() - started
    models = {"llm": job.keyword_model, **outcome.models}
    chosen = result.candidates[result.chosen].candidate if result.chosen is not None else None
    record = GenerationRecord(
        user=user,
        chat=chat,
        profile=job.profile,
        request_text="" if context_message_ids else "\n".join(conversation),
        context_message_ids=list(context_message_ids or []),
        consent_at=consent.updated_at,
        preference_keywords=result.request.preference_keywords,
        target_keywords=result.request.target_keywords,
        mood=result.request.mood,
        weight_sets=list(job.weight_sets),
        candidates=[c.summary() for c in result.candidates],
        chosen_index=result.chosen,
        alpha=alpha,
        notes=result.notes,
        models=models,
        checkpoint_version=result.checkpoint_version,
        timings={
            **{f"keywords_{stage}": t for stage, t in understanding.timings.items()},
            **{f"sticker_{stage}": t for stage, t in result.timings.items()},
            "total": seconds,
        },
        status="done" if chosen is not None else "failed",
        error=None if chosen is not None else "every candidate was flagged by the safety check",
    )
    # The store writes only if the consent read above still holds, in the same transaction as the write.
    generation_id = await store.record_generation(
        record, image=result.files.webp if result.files else None, image_mime="image/webp"
    )
    if generation_id is None and consent.personalize:
        raise ConsentWithdrawn()  # made from data the user no longer lets us use (or /forget-ed)
    if generation_id is not None:
        await remember_preferences(store, user, context, understanding, job.keyword_model, consent)
    return StickerReply(understanding, result, generation_id, bool(context.history), seconds, models)
