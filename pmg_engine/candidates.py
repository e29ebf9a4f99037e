"""What stage 2 passes around: a request for stickers, the candidates a generator makes, and the seam
(`Generator`) behind which the offline composer and Stable Diffusion sit."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from pmg_engine.behaviors import UserBehaviors

WeightSet = tuple[float, float]  # (w_p, w_t) as configured, e.g. (1, 3)


def normalise_weights(w_p: float, w_t: float) -> tuple[float, float]:
    """Scale a weight pair so its larger weight is 1: 0:4 -> (0, 1), 1:3 -> (⅓, 1), 2:2 -> (1, 1).

    The dominant part stays at the scale the U-Net was trained on; the other is attenuated.
    """
    if w_p < 0 or w_t < 0 or max(w_p, w_t) == 0:
        raise ValueError(f"weights w_p:w_t = {w_p}:{w_t} must be non-negative and not both zero")
    top = max(w_p, w_t)
    return w_p / top, w_t / top


@dataclass(frozen=True)
class StickerRequest:
    """Stage 1's output for one user, and how to turn it into candidates."""

    preference_keywords: list[str]
    target_keywords: list[str]
    mood: str
    weight_sets: list[WeightSet]
    seed: int
    sent_emoji: tuple[str, ...] = ()  # emoji the user sent: the offline art lookup prefers them
    soft_embeddings: torch.Tensor | None = None  # (L, D) from the bias-correction LLM, when trained
    behaviors: UserBehaviors | None = None  # the bias-correction LLM's input, when a checkpoint serves

    def candidate_seed(self, index: int) -> int:
        """Each candidate's own seed: a result can be reproduced from the record alone."""
        return self.seed + index


@dataclass
class Candidate:
    """One generated image and what it was made from."""

    image: Image.Image  # RGBA (offline) or RGB (diffusion)
    weights: WeightSet
    seed: int
    description: str  # what it shows, in words: the offline scorer compares it with the keywords
    details: dict[str, Any] = field(default_factory=dict)  # JSON-able: composition or normalised weights
    flagged: bool = False  # the generator's own safety checker (SD1.5's) flagged it


@dataclass
class CandidateSet:
    """All candidates of one request, and notes the user should see (e.g. no art for a keyword)."""

    candidates: list[Candidate]
    notes: list[str] = field(default_factory=list)


class Generator(Protocol):
    """Makes one candidate per weight set for each request; all requests in one batched call."""

    @property
    def models(self) -> dict[str, str]: ...

    def generate(
        self, requests: Sequence[StickerRequest], *, interrupted: Callable[[], bool] = ...
    ) -> list[CandidateSet]: ...
