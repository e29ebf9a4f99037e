"""Stage 2 of PMG for a batch of requests: deny-list → candidates → safety → scores → z → the sticker."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from pmg_engine.candidates import Generator, StickerRequest
from pmg_engine.prompts import soft_prompt
from pmg_engine.safety import ImageGate, KeywordDenyList
from pmg_engine.scoring import Scorer
from pmg_engine.selection import best_index, check_alpha, z_score
from pmg_engine.soft_prompt import CheckpointError, SoftPreferences
from pmg_engine.sticker_file import encode_sticker
from pmg_engine.sticker_result import NothingToDrawError, ScoredCandidate, StickerResult

log = logging.getLogger(__name__)


def keyword_text(keywords: Sequence[str]) -> str:
    """The text a scorer embeds for a keyword set."""
    return ", ".join(keywords)


class StickerMaker:
    """The engine's stage 2, profile-neutral: any Generator, any Scorer, an optional NSFW gate."""

    def __init__(
        self,
        generator: Generator,
        scorer: Scorer,
        *,
        gate: ImageGate | None,
        deny_list: KeywordDenyList,
        soft: SoftPreferences | None = None,
    ) -> None:
        self.generator = generator
        self.scorer = scorer
        self.gate = gate
        self.deny_list = deny_list
        self.soft = soft  # None: the generator has no text space for E_m (the offline composer)
        self.max_batch: int | None = None  # requests per batch the GPU holds, when measured at start-up

    def use_checkpoint(self, version: str, path: Path) -> str | None:
        """Serve this soft-embedding checkpoint from the next batch on; a refused one is logged, the one
        serving (or keywords alone) stays, and the returned note says so."""
        if self.soft is None:
            return None
        try:
            self.soft.use(version, path)
        except CheckpointError as error:
            log.error("checkpoint %s refused: %s", version, error)
            return f"checkpoint {version} could not be used ({error}); keywords alone shape this sticker"
        return None

    def _with_soft_embeddings(self, requests: list[StickerRequest]) -> list[StickerRequest]:
        """E_m for every request that brings its behaviors, in one forward pass of the bias-correction LLM."""
        asking = [(i, r.behaviors) for i, r in enumerate(requests) if r.behaviors is not None]
        soft = self.soft.embed([soft_prompt(behaviors) for _, behaviors in asking]) if self.soft else None
        if soft is None:
            return requests
        requests = list(requests)
        for row, (i, _) in enumerate(asking):
            requests[i] = replace(requests[i], soft_embeddings=soft[row])
        return requests

    @property
    def models(self) -> dict[str, str]:
        safety = self.gate.name if self.gate else "the generator's own safety checker"
        return {**self.generator.models, "scorer": self.scorer.name, "safety": safety}

    def _screen(self, request: StickerRequest) -> tuple[StickerRequest, list[str]]:
        preference, dropped_p = self.deny_list.filter(request.preference_keywords)
        target, dropped_t = self.deny_list.filter(request.target_keywords)
        if not preference and not target and request.soft_embeddings is None:
            raise NothingToDrawError("no keywords are left to draw a sticker from")
        notes = [f"left out: {', '.join(dropped_p + dropped_t)}"] if dropped_p or dropped_t else []
        return replace(request, preference_keywords=preference, target_keywords=target), notes

    def make(
        self,
        requests: Sequence[StickerRequest],
        alphas: Sequence[float],
        *,
        interrupted: Callable[[], bool] = lambda: False,
    ) -> list[StickerResult]:
        """One sticker per request; all candidates of all requests in one generate call (which stops
        early, between denoising steps, once `interrupted()` says nobody wants the batch any more)."""
        for alpha in alphas:
            check_alpha(alpha)
        started = time.perf_counter()
        screened = [self._screen(r) for r in requests]
        requests = self._with_soft_embeddings([r for r, _ in screened])
        version = self.soft.version if self.soft is not None and self.soft.model is not None else None
        sets = self.generator.generate(requests, interrupted=interrupted)
        generated = time.perf_counter()

        everything = [c for s in sets for c in s.candidates]
        flags = self.gate.flags([c.image for c in everything]) if self.gate else [False] * len(everything)
        checked = time.perf_counter()

        results, offset = [], 0
        for request, (_, notes), alpha, candidate_set in zip(requests, screened, alphas, sets, strict=True):
            candidates = candidate_set.candidates
            d_p, d_t = self.scorer.similarities(
                candidates, keyword_text(request.preference_keywords), keyword_text(request.target_keywords)
            )
            scored = [
                ScoredCandidate(c, p, t, z_score(p, t, alpha), c.flagged or flags[offset + i])
                for i, (c, p, t) in enumerate(zip(candidates, d_p, d_t, strict=True))
            ]
            offset += len(candidates)
            chosen = best_index([s.z for s in scored], [not s.flagged for s in scored])
            if any(s.flagged for s in scored):
                log.warning("safety dropped %d of %d candidates", sum(s.flagged for s in scored), len(scored))
            files = encode_sticker(candidates[chosen].image) if chosen is not None else None
            results.append(
                StickerResult(
                    request,
                    alpha,
                    scored,
                    chosen,
                    files,
                    notes + candidate_set.notes,
                    checkpoint_version=version,
                )
            )
        finished = time.perf_counter()
        timings = {
            "generate": generated - started,
            "safety": checked - generated,
            "score_and_encode": finished - checked,
        }
        for result in results:
            result.timings = dict(timings)
        return results
