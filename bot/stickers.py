"""The /sticker use case, platform-neutral: stage 1 (keywords, mood) → stage 2 (candidates, z) → the
chosen sticker stored as a blob and the whole generation recorded."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from bot.behavior import GenerationRecord
from bot.identity import UserKey
from bot.personalization import Stage1, behaviors_from_history, understand_request

if TYPE_CHECKING:
    from adapters.store.behavior_store import SqliteBehaviorStore
    from pmg_engine.candidates import StickerRequest, WeightSet
    from pmg_engine.keywords import Understanding
    from pmg_engine.stickers import StickerResult


class Stage2(Protocol):
    """What the use case needs of the engine's stage 2 (pmg_engine.stickers.StickerMaker)."""

    @property
    def models(self) -> dict[str, str]: ...

    def make(self, requests: list[StickerRequest], alphas: list[float]) -> list[StickerResult]: ...

    def use_checkpoint(self, version: str, path: Path) -> str | None: ...


@dataclass(frozen=True)
class StickerReply:
    """What a platform needs to answer: the result, why it looks so, and where it was recorded."""

    understanding: Understanding
    result: StickerResult
    generation_id: int
    personalized: bool  # False: no history, so the sticker follows the mood alone
    seconds: float
    models: dict[str, str]  # what made it: LLM, generator, scorer, safety


@dataclass(frozen=True)
class StickerJob:
    """How stickers are made here: the profile, n history items, the weight sets and the base seed."""

    profile: str
    history_items: int
    weight_sets: list[WeightSet]
    seed: int


async def make_sticker(
    store: SqliteBehaviorStore,
    stage1: Stage1,
    stage2: Stage2,
    job: StickerJob,
    user: UserKey,
    conversation: list[str],
    *,
    alpha: float,
    seed: int | None = None,
    chat: str | None = None,
) -> StickerReply:
    """One sticker for `user` in reply to `conversation`; the generation is recorded, the sticker kept."""
    from pmg_engine.candidates import StickerRequest

    started = time.perf_counter()
    understanding = await understand_request(
        store, stage1, user, conversation, history_items=job.history_items
    )
    history = await store.recent_history(user, job.history_items)
    sent_emoji = tuple(item.sticker.emoji for item in history if item.sticker and item.sticker.emoji)
    notes = await _serve_promoted_checkpoint(store, stage2)
    request = StickerRequest(
        preference_keywords=understanding.preferences.keywords,
        target_keywords=understanding.target_keywords,
        mood=understanding.mood.mood,
        weight_sets=list(job.weight_sets),
        seed=job.seed if seed is None else seed,
        sent_emoji=sent_emoji,
        behaviors=behaviors_from_history(history, conversation) if history else None,
    )
    # Generation is CPU/GPU-bound: off the event loop, so the bot keeps answering meanwhile.
    [result] = await asyncio.to_thread(stage2.make, [request], [alpha])
    result.notes = notes + result.notes
    seconds = time.perf_counter() - started
    models = {"llm": stage1.model_name, **stage2.models}
    chosen = result.candidates[result.chosen].candidate if result.chosen is not None else None
    record = GenerationRecord(
        user=user,
        chat=chat,
        profile=job.profile,
        request_text="\n".join(conversation),
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
    generation_id = await store.record_generation(
        record, image=result.files.webp if result.files else None, image_mime="image/webp"
    )
    return StickerReply(understanding, result, generation_id, bool(history), seconds, models)


async def _serve_promoted_checkpoint(store: SqliteBehaviorStore, stage2: Stage2) -> list[str]:
    """Hot swap: the checkpoint promoted by the last `retrain` serves from this request on."""
    promoted = await store.promoted_checkpoint()
    if promoted is None:
        return []
    version, sha256 = promoted
    note = await asyncio.to_thread(stage2.use_checkpoint, version, store.blobs.path(sha256))
    return [note] if note else []
