"""What stage 2 returns for a request. Plain data without model code: replies from sticker workers in another
process carry it, and the front end that unpickles them must not load torch for it."""

from __future__ import annotations

from dataclasses import dataclass, field

from pmg_engine.candidates import Candidate, StickerRequest
from pmg_engine.sticker_file import StickerFiles


class NothingToDrawError(ValueError):
    """Neither preference nor target keywords are left to draw from."""


@dataclass
class ScoredCandidate:
    """A candidate with its cosines, its z, and whether a safety check dropped it."""

    candidate: Candidate
    d_p: float
    d_t: float
    z: float
    flagged: bool

    def summary(self) -> dict[str, object]:
        """What the generation record and `--json` keep of it (no pixels)."""
        c = self.candidate
        return {
            "weights": list(c.weights),
            "seed": c.seed,
            **c.details,
            "description": c.description,
            "d_p": round(self.d_p, 4),
            "d_t": round(self.d_t, 4),
            "z": round(self.z, 4),
            "flagged": self.flagged,
        }


@dataclass
class StickerResult:
    """The outcome of one request: every scored candidate, the chosen one (None: all were flagged)."""

    request: StickerRequest
    alpha: float
    candidates: list[ScoredCandidate]
    chosen: int | None
    files: StickerFiles | None
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    checkpoint_version: str | None = None  # the soft-embedding checkpoint used, None: keywords alone
