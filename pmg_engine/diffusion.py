"""Stable Diffusion 1.5 as a sticker generator (profiles `sd15` and `tiny`): every candidate of every
request is denoised in one batched call, conditioned on w_p·E^P and w_t·E^t via `prompt_embeds`."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from pmg_engine.candidates import Candidate, CandidateSet, StickerRequest, normalise_weights
from pmg_engine.conditioning import encode_prompts, fit_condition, preference_rows
from pmg_engine.model_sources import ModelUnavailableError, resolve_model

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DiffusionOptions:
    """How candidates are drawn; the defaults are SD1.5's usual ones."""

    steps: int = 25
    guidance_scale: float = 7.5
    frame: str = "a cute sticker, white background, bold outline, simple flat colors"
    negative_prompt: str = (
        "bad art, blurry, text, letters, watermark, signature, extra limbs, deformed, cropped, photo"
    )


def target_prompt(target_keywords: Sequence[str], frame: str) -> str:
    """E^t's text: the mood's keywords, then the sticker frame."""
    return ", ".join([*target_keywords, frame])


class DiffusionGenerator:
    """A diffusers StableDiffusionPipeline loaded by id or path, used through `prompt_embeds` only."""

    def __init__(self, pipeline, source: str, options: DiffusionOptions) -> None:
        self.pipeline = pipeline
        self.source = source
        self.options = options

    @classmethod
    def load(
        cls,
        source: str,
        *,
        options: DiffusionOptions = DiffusionOptions(),
        setting: str = "PMG_SD_MODEL",
        safety_checker: bool = True,
    ) -> DiffusionGenerator:
        """`safety_checker`: the pipeline's own NSFW checker must be present and on (sd15); the tiny
        profile has none and runs the NSFW gate instead."""
        from diffusers import StableDiffusionPipeline

        folder = resolve_model(source, marker="model_index.json", setting=setting)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = torch.float16 if device == "cuda" else torch.float32
        pipeline = StableDiffusionPipeline.from_pretrained(folder, dtype=dtype)
        if safety_checker and pipeline.safety_checker is None:
            raise ModelUnavailableError(
                f"{folder} has no safety_checker; the sd15 profile keeps SD's NSFW checker on — "
                f"use a pipeline folder that includes it ({setting})"
            )
        pipeline.set_progress_bar_config(disable=True)
        log.info("diffusion generator: %s on %s (%s)", source, device, dtype)
        return cls(pipeline.to(device), source, options)

    @property
    def models(self) -> dict[str, str]:
        return {"generator": f"StableDiffusionPipeline {self.source}"}

    def conditions(self, requests: Sequence[StickerRequest]) -> tuple[torch.Tensor, torch.Tensor]:
        """prompt_embeds and negative_prompt_embeds for every (request, weight set): (N, 77, D) each."""
        pipe = self.pipeline
        texts = ["", self.options.negative_prompt]
        for request in requests:
            texts += [
                ", ".join(request.preference_keywords),
                target_prompt(request.target_keywords, self.options.frame),
            ]
        encoded, hidden = encode_prompts(pipe.tokenizer, pipe.text_encoder, texts)
        empty, negative = hidden[0], hidden[1]
        conditions = []
        for n, request in enumerate(requests):
            keywords, target = encoded[2 + 2 * n], encoded[3 + 2 * n]
            preference = (
                preference_rows(keywords, request.soft_embeddings)
                if request.preference_keywords or request.soft_embeddings is not None
                else keywords.body[:0]  # no keywords, no soft embeddings: E^P is empty
            )
            for weights in request.weight_sets:
                conditions.append(fit_condition(empty, preference, target.body, normalise_weights(*weights)))
        prompt_embeds = torch.stack(conditions)  # (N, 77, D)
        return prompt_embeds, negative.expand_as(prompt_embeds)

    def generate(
        self, requests: Sequence[StickerRequest], *, interrupted: Callable[[], bool] = lambda: False
    ) -> list[CandidateSet]:
        prompt_embeds, negative_embeds = self.conditions(requests)

        def stop_when_unwanted(
            pipe, step: int, timestep: int, tensors: dict[str, object]
        ) -> dict[str, object]:
            if interrupted():
                pipe._interrupt = True  # diffusers stops before the next step
            return tensors

        seeds = [r.candidate_seed(i) for r in requests for i in range(len(r.weight_sets))]
        device = self.pipeline.device
        generators = [torch.Generator(device=device).manual_seed(seed) for seed in seeds]
        output = self.pipeline(
            prompt_embeds=prompt_embeds,
            negative_prompt_embeds=negative_embeds,
            num_inference_steps=self.options.steps,
            guidance_scale=self.options.guidance_scale,
            generator=generators,
            callback_on_step_end=stop_when_unwanted,
        )
        flags = output.nsfw_content_detected or [False] * len(seeds)
        images = iter(zip(output.images, seeds, flags, strict=True))
        sets = []
        for request in requests:
            candidates = []
            for weights in request.weight_sets:
                image, seed, flagged = next(images)
                w_p, w_t = normalise_weights(*weights)
                candidates.append(
                    Candidate(
                        image,
                        weights,
                        seed,
                        description=f"{w_p:.2f}·[{', '.join(request.preference_keywords)}] "
                        f"+ {w_t:.2f}·[{', '.join(request.target_keywords)}]",
                        details={"w_p": round(w_p, 4), "w_t": round(w_t, 4), "steps": self.options.steps},
                        flagged=bool(flagged),
                    )
                )
            sets.append(CandidateSet(candidates))
        return sets
