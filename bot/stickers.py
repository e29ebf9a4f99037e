"""The /sticker use case, platform-neutral: the user's context from the store → the sticker service
(stage 1 and stage 2, batched with other users) → the chosen sticker stored and the generation recorded."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from bot.behavior import GenerationRecord, StoredGeneration
from bot.identity import UserKey
from bot.personalization import load_context, remember_preferences
from bot.service import ProgressCallback, ServiceError, StickerBackend

if TYPE_CHECKING:
    from bot.sticker_engine import EngineOutcome, EngineRequest
    from bot.store import BehaviorStore
    from pmg_engine.candidates import StickerRequest, WeightSet
    from pmg_engine.sticker_file import StickerFiles
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
    return await _draw(
        Drawing(store, service, job, user, chat, alpha, progress, deadline_s),
        conversation,
        seed=job.seed if seed is None else seed,
        request_text="" if context_message_ids else "\n".join(conversation),
        context_message_ids=list(context_message_ids or []),
    )


async def make_another(
    store: BehaviorStore,
    service: StickerBackend[EngineRequest, EngineOutcome],
    job: StickerJob,
    user: UserKey,
    earlier: StoredGeneration,
    *,
    alpha: float,
    progress: ProgressCallback | None = None,
    deadline_s: float | None = None,
) -> StickerReply:
    """🔄 Another: `earlier`'s keywords, mood and target again (no LLM question is asked), with the
    next seeds after its own, recorded as a generation of its own."""
    from pmg_engine.mood_data import MoodPrediction
    from pmg_engine.preferences import Preferences
    from pmg_engine.understanding import Understanding

    keywords = earlier.preference_keywords
    understood = Understanding(
        Preferences(keywords, keywords[0] if keywords else None),
        MoodPrediction(earlier.mood or "neutral", {}),
        earlier.target_keywords,
    )
    return await _draw(
        Drawing(store, service, job, user, earlier.chat, alpha, progress, deadline_s),
        [earlier.request_text] if earlier.request_text else [],
        seed=max((int(c["seed"]) for c in earlier.candidates), default=job.seed - 1) + 1,
        request_text=earlier.request_text,
        context_message_ids=[],
        understood=understood,
    )


@dataclass(frozen=True)
class Drawing:
    """Who a sticker is drawn for, where it goes, and through what."""

    store: BehaviorStore
    service: StickerBackend[EngineRequest, EngineOutcome]
    job: StickerJob
    user: UserKey
    chat: str | None
    alpha: float
    progress: ProgressCallback | None
    deadline_s: float | None


async def _draw(
    drawing: Drawing,
    conversation: list[str],
    *,
    seed: int,
    request_text: str,
    context_message_ids: list[int],
    understood: Understanding | None = None,
) -> StickerReply:
    from bot.sticker_engine import EngineRequest

    store, job, user = drawing.store, drawing.job, drawing.user
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
        alpha=drawing.alpha,
        seed=seed,
        personalized=bool(context.history),
        checkpoint=(promoted[0], await store.blob_file(promoted[1])) if promoted else None,
        understood=understood,
    )
    outcome = await drawing.service.request(
        user, request, progress=drawing.progress, deadline_s=drawing.deadline_s
    )
    understanding, result = outcome.understanding, outcome.result
    seconds = time.perf_counter() - started
    models = {"llm": job.keyword_model, **outcome.models}
    chosen = result.candidates[result.chosen].candidate if result.chosen is not None else None
    record = GenerationRecord(
        user=user,
        chat=drawing.chat,
        profile=job.profile,
        request_text=request_text,
        context_message_ids=context_message_ids,
        consent_at=consent.updated_at,
        preference_keywords=result.request.preference_keywords,
        target_keywords=result.request.target_keywords,
        mood=result.request.mood,
        weight_sets=list(job.weight_sets),
        candidates=[c.summary() for c in result.candidates],
        chosen_index=result.chosen,
        alpha=drawing.alpha,
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
    # Kept for 🎨 Choose: only for a user whose generations are recorded, and never a flagged one.
    candidate_images = await asyncio.to_thread(_safe_candidates, result) if consent.personalize else {}
    # The store writes only if the consent read above still holds, in the same transaction as the write.
    generation_id = await store.record_generation(
        record,
        image=result.files.webp if result.files else None,
        image_mime="image/webp",
        candidate_images=candidate_images,
    )
    if generation_id is None and consent.personalize:
        raise ConsentWithdrawn()  # made from data the user no longer lets us use (or /forget-ed)
    if generation_id is not None and understood is None:
        await remember_preferences(store, user, context, understanding, job.keyword_model, consent)
    return StickerReply(understanding, result, generation_id, bool(context.history), seconds, models)


def _safe_candidates(result: StickerResult) -> dict[int, bytes]:
    """Each unflagged candidate as its sticker WebP (the chosen one is already encoded)."""
    from pmg_engine.sticker_file import encode_sticker

    return {
        index: result.files.webp
        if index == result.chosen and result.files
        else encode_sticker(scored.candidate.image).webp
        for index, scored in enumerate(result.candidates)
        if not scored.flagged
    }


def sticker_files(webp: bytes) -> StickerFiles:
    """A stored sticker WebP as the files a platform sends (WebP for Telegram, PNG for Discord)."""
    import io

    from PIL import Image

    from pmg_engine.sticker_file import encode_sticker

    return encode_sticker(Image.open(io.BytesIO(webp)))
