"""The engine behind the sticker service: stage 1 and stage 2 for a batch of users, in the model worker
thread, with the newest promoted checkpoint swapped in between batches."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bot.personalization import Stage1
from bot.service import BatchTooLarge

if TYPE_CHECKING:
    from bot.stickers import Stage2
    from pmg_engine.behaviors import UserBehaviors
    from pmg_engine.candidates import WeightSet
    from pmg_engine.preferences import Preferences
    from pmg_engine.sticker_result import StickerResult
    from pmg_engine.understanding import Understanding


@dataclass(frozen=True)
class EngineRequest:
    """One user's /sticker as the engine needs it (no store, no platform)."""

    behaviors: UserBehaviors
    cached: Preferences | None  # valid cached k^p: no preference questions for this user
    alpha: float
    seed: int
    personalized: bool  # the user has history: the soft embeddings apply
    checkpoint: tuple[str, Path] | None = None  # the promoted checkpoint when the request was made
    understood: Understanding | None = None  # 🔄 Another: stage 1's answer from before, asked again of nobody


@dataclass(frozen=True)
class EngineOutcome:
    understanding: Understanding
    result: StickerResult
    models: dict[str, str]  # what made it: generator, scorer, safety


class StickerEngine:
    """Loads the two stages once (in the worker thread) and runs batches through both."""

    def __init__(self, load: Callable[[], tuple[Stage1, Stage2]], weight_sets: list[WeightSet]) -> None:
        self._load = load
        self.weight_sets = weight_sets
        self.stages: tuple[Stage1, Stage2] | None = None

    @classmethod
    def loaded(cls, stage1: Stage1, stage2: Stage2, weight_sets: list[WeightSet]) -> StickerEngine:
        """An engine whose stages are already loaded (the CLI loads them in front, with a spinner)."""
        return cls(lambda: (stage1, stage2), weight_sets)

    def load(self) -> None:
        self.stages = self._load()

    @property
    def models(self) -> dict[str, str]:
        if self.stages is None:
            return {}
        stage1, stage2 = self.stages
        return {"llm": stage1.model_name, **stage2.models}

    def batch_limit(self, configured: int) -> int:
        """PMG_MAX_BATCH, or less where stage 2 measured at start-up that its GPU holds fewer requests."""
        assert self.stages is not None, "load() runs first"
        measured = getattr(self.stages[1], "max_batch", None)  # StickerMaker's; fakes have none
        return min(configured, measured or configured)

    def run(self, requests: list[EngineRequest], interrupted: Callable[[], bool]) -> list[EngineOutcome]:
        from pmg_engine.candidates import StickerRequest

        assert self.stages is not None, "load() runs before any batch"
        stage1, stage2 = self.stages
        notes = self._swap_checkpoint(requests, stage2)
        understandings = self._understand(stage1, requests)
        sticker_requests = [
            StickerRequest(
                preference_keywords=u.preferences.keywords,
                target_keywords=u.target_keywords,
                mood=u.mood.mood,
                weight_sets=list(self.weight_sets),
                seed=r.seed,
                sent_emoji=tuple(s.emoji for s in r.behaviors.stickers if s.emoji),
                behaviors=r.behaviors if r.personalized else None,
            )
            for r, u in zip(requests, understandings, strict=True)
        ]
        try:
            results = stage2.make(sticker_requests, [r.alpha for r in requests], interrupted=interrupted)
        except MemoryError as error:
            raise BatchTooLarge from error
        except RuntimeError as error:  # torch.OutOfMemoryError (CUDA's) is a RuntimeError
            if "out of memory" in str(error).lower():
                free_gpu_cache()  # the halves that run next need the blocks this batch held
                raise BatchTooLarge from error
            raise
        for result in results:
            result.notes = notes + result.notes
        return [EngineOutcome(u, r, stage2.models) for u, r in zip(understandings, results, strict=True)]

    @staticmethod
    def _understand(stage1: Stage1, requests: list[EngineRequest]) -> list[Understanding]:
        """Stage 1 for the requests that need it, in one batch; the others keep what they bring."""
        asking = [r for r in requests if r.understood is None]
        answers = iter(
            stage1.understand([r.behaviors for r in asking], [r.cached for r in asking]) if asking else []
        )
        return [r.understood if r.understood is not None else next(answers) for r in requests]

    @staticmethod
    def _swap_checkpoint(requests: list[EngineRequest], stage2: Stage2) -> list[str]:
        """Between batches: the newest checkpoint any request saw promoted starts serving."""
        promoted = sorted({r.checkpoint for r in requests if r.checkpoint is not None})
        if not promoted:
            return []
        version, path = promoted[-1]  # versions sort by time
        note = stage2.use_checkpoint(version, path)
        return [note] if note else []


def free_gpu_cache() -> None:
    import torch

    if torch.cuda.is_initialized():
        torch.cuda.empty_cache()
