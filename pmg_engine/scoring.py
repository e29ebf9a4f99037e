"""Scorers: cosines of each candidate with the preference and target keywords (d_p, d_t)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import torch

from pmg_engine.candidates import Candidate
from pmg_engine.mood import SentenceEmbedder


class Scorer(Protocol):
    """d_p and d_t per candidate; an empty keyword text gives cosine 1 (that side has no say)."""

    name: str

    def similarities(
        self, candidates: Sequence[Candidate], preference_text: str, target_text: str
    ) -> tuple[list[float], list[float]]: ...


def _cosines(items: torch.Tensor, text: torch.Tensor | None) -> list[float]:
    """(N, D) unit rows · (D,) unit text; no text (no keywords): 1.0 each, so log d = 0."""
    if text is None:
        return [1.0] * len(items)
    return (items @ text).tolist()


class TextScorer:
    """The offline scorer: MiniLM embeddings of each candidate's description against the keyword texts."""

    def __init__(self, embedder: SentenceEmbedder) -> None:
        self.embedder = embedder
        self.name = embedder.name

    def similarities(
        self, candidates: Sequence[Candidate], preference_text: str, target_text: str
    ) -> tuple[list[float], list[float]]:
        texts = [c.description for c in candidates] + [t for t in (preference_text, target_text) if t]
        vectors = self.embedder.encode(texts)  # (N + k, 384), unit rows
        n = len(candidates)
        preference = vectors[n] if preference_text else None
        target = vectors[-1] if target_text else None
        return _cosines(vectors[:n], preference), _cosines(vectors[:n], target)


class ClipScorer:
    """open_clip image and text towers: cosines of each image with the keyword texts."""

    def __init__(self, model: str, weights: Path, *, device: str = "cpu") -> None:
        """`model`: an architecture open_clip knows, or the path of a model config file (JSON)."""
        import open_clip

        from pmg_engine.model_sources import open_clip_architecture

        model_name = open_clip_architecture(model)
        self.name = f"open_clip {model_name} ({weights.name})"
        self.device = device
        clip, _, preprocess = open_clip.create_model_and_transforms(
            model_name,
            pretrained=str(weights),
            device=device,
            precision="fp16" if device.startswith("cuda") else "fp32",
        )
        self.model = clip.eval()
        self.preprocess = preprocess
        self.tokenizer = open_clip.get_tokenizer(model_name)

    @torch.no_grad()
    def similarities(
        self, candidates: Sequence[Candidate], preference_text: str, target_text: str
    ) -> tuple[list[float], list[float]]:
        dtype = next(self.model.parameters()).dtype
        images = torch.stack([self.preprocess(c.image.convert("RGB")) for c in candidates])
        images = images.to(self.device, dtype)  # all candidates in one pass of the image tower
        image_vectors = torch.nn.functional.normalize(self.model.encode_image(images).float(), dim=-1)
        texts = [t for t in (preference_text, target_text) if t]
        text_vectors = (
            torch.nn.functional.normalize(
                self.model.encode_text(self.tokenizer(texts).to(self.device)).float(), dim=-1
            )
            if texts
            else None
        )
        preference = text_vectors[0] if preference_text and text_vectors is not None else None
        target = text_vectors[-1] if target_text and text_vectors is not None else None
        return _cosines(image_vectors.cpu(), preference), _cosines(image_vectors.cpu(), target)
