"""Stable Diffusion 1.5 as a sticker generator (profiles `sd15` and `tiny`): every candidate of every
request is denoised in one batched call, conditioned on w_p·E^P and w_t·E^t via `prompt_embeds`."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import torch

from pmg_engine.candidates import Candidate, CandidateSet, StickerRequest, normalise_weights
from pmg_engine.conditioning import encode_prompts, fit_condition, preference_rows
from pmg_engine.model_sources import ModelUnavailableError, resolve_model

log = logging.getLogger(__name__)


# `PMG_SD_SCHEDULER` names: diffusers' sampler classes, each made from the pipeline's own config.
SCHEDULERS = {
    "dpm": "DPMSolverMultistepScheduler",  # DPM-Solver++ (2M): SD1.5's quality in about 20 steps
    "pndm": "PNDMScheduler",  # what SD1.5 ships with: about 50 steps
    "ddim": "DDIMScheduler",
    "euler": "EulerDiscreteScheduler",
    "euler-a": "EulerAncestralDiscreteScheduler",
}


@dataclass(frozen=True)
class DiffusionOptions:
    """How candidates are drawn: SD1.5's usual guidance, DPM-Solver++ in 20 steps."""

    steps: int = 20
    guidance_scale: float = 7.5
    scheduler: str = "dpm"
    size: int | None = None  # pixels per side; None: the U-Net's own (512 for SD1.5)
    frame: str = "a cute sticker, white background, bold outline, simple flat colors"
    negative_prompt: str = (
        "bad art, blurry, text, letters, watermark, signature, extra limbs, deformed, cropped, photo"
    )


def target_prompt(target_keywords: Sequence[str], frame: str) -> str:
    """E^t's text: the mood's keywords, then the sticker frame."""
    return ", ".join([*target_keywords, frame])


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def compile_buckets(max_batch: int) -> list[int]:
    """The request counts a compiled U-Net is built for: powers of two below `max_batch`, and it. A batch
    is padded up to the next one, so no user's request ever waits for a compilation."""
    return sorted({2**i for i in range(max_batch.bit_length()) if 2**i < max_batch} | {max_batch})


def warm_up_request(weight_sets: Sequence[tuple[float, float]]) -> StickerRequest:
    """A request like any user's, for start-up work (memory probe, compilation)."""
    return StickerRequest(["cat"], ["happy", "big smile"], "joy", list(weight_sets), seed=0)


class DiffusionGenerator:
    """A diffusers StableDiffusionPipeline loaded by id or path, used through `prompt_embeds` only."""

    def __init__(self, pipeline, source: str, options: DiffusionOptions) -> None:
        self.pipeline = pipeline
        self.source = source
        self.options = options
        self.buckets: list[int] = []  # set once the U-Net is compiled: batches are padded to these

    @classmethod
    def load(
        cls,
        source: str,
        *,
        options: DiffusionOptions = DiffusionOptions(),
        setting: str = "PMG_SD_MODEL",
        safety_checker: bool = True,
        device: str | None = None,
        dtype: torch.dtype | None = None,
    ) -> DiffusionGenerator:
        """`safety_checker`: the pipeline's own NSFW checker must be present and on (sd15); the tiny
        profile has none and runs the NSFW gate instead. `dtype`: fp16 on CUDA, fp32 on a CPU."""
        from diffusers import StableDiffusionPipeline

        folder = resolve_model(source, marker="model_index.json", setting=setting)
        device = device or default_device()
        dtype = dtype or (torch.float16 if device.startswith("cuda") else torch.float32)
        pipeline = StableDiffusionPipeline.from_pretrained(folder, dtype=dtype)
        if safety_checker and pipeline.safety_checker is None:
            raise ModelUnavailableError(
                f"{folder} has no safety_checker; the sd15 profile keeps SD's NSFW checker on — "
                f"use a pipeline folder that includes it ({setting})"
            )
        return cls.ready(pipeline, source, options, device)

    @classmethod
    def ready(cls, pipeline, source: str, options: DiffusionOptions, device: str) -> DiffusionGenerator:
        """`pipeline` on `device` with the options' sampler; on CUDA the U-Net runs channels-last with
        PyTorch's fused attention (SDPA)."""
        import diffusers
        from diffusers.models.attention_processor import AttnProcessor2_0

        if options.scheduler not in SCHEDULERS:
            raise ValueError(f"unknown scheduler {options.scheduler!r}: one of {', '.join(SCHEDULERS)}")
        sampler = getattr(diffusers, SCHEDULERS[options.scheduler])
        pipeline.scheduler = sampler.from_config(pipeline.scheduler.config)
        pipeline.unet.set_attn_processor(AttnProcessor2_0())
        pipeline = pipeline.to(device)
        if device.startswith("cuda"):
            pipeline.unet.to(memory_format=torch.channels_last)
        pipeline.set_progress_bar_config(disable=True)
        log.info(
            "diffusion generator: %s on %s (%s, %s, %d steps)",
            source,
            device,
            pipeline.unet.dtype,
            options.scheduler,
            options.steps,
        )
        return cls(pipeline, source, options)

    def largest_batch(self, upper: int, weight_sets: Sequence[tuple[float, float]]) -> int:
        """The most requests (at most `upper`) one batch can hold in this GPU's memory: tried from `upper`
        down by halves, one denoising step each (every step needs the same memory)."""
        options, self.options = self.options, replace(self.options, steps=1)
        try:
            size = upper
            while size > 1:
                try:
                    self.generate([warm_up_request(weight_sets)] * size)
                    break
                except torch.OutOfMemoryError:
                    torch.cuda.empty_cache()
                    log.info("a batch of %d requests does not fit in GPU memory; trying %d", size, size // 2)
                    size //= 2
        finally:
            self.options = options
        return max(size, 1)

    def compile(
        self, max_batch: int, weight_sets: Sequence[tuple[float, float]], *, backend: str = "inductor"
    ) -> float:
        """torch.compile the U-Net and pay for it now: one warm-up batch per bucket (`compile_buckets`),
        so a user's request never waits for a compilation. Returns the seconds it took. After the
        second size, torch.compile makes the batch dimension dynamic: two compilations serve them all."""
        started = time.perf_counter()
        self.pipeline.unet = torch.compile(self.pipeline.unet, backend=backend)
        self.buckets = compile_buckets(max_batch)
        for size in self.buckets:
            self.generate([warm_up_request(weight_sets)] * size)
        seconds = time.perf_counter() - started
        log.info("compiled the U-Net for batches of %s requests in %.0f s", self.buckets, seconds)
        return seconds

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
        """Every candidate of every request in one denoising loop (one U-Net call per step, guidance
        included), one VAE decode and one safety-checker pass."""
        wanted = len(requests)
        bucket = next((b for b in self.buckets if b >= wanted), wanted)
        padded = [*requests, *[requests[-1]] * (bucket - wanted)]  # compiled: a shape built at start-up
        prompt_embeds, negative_embeds = self.conditions(padded)

        def stop_when_unwanted(
            pipe, step: int, timestep: int, tensors: dict[str, object]
        ) -> dict[str, object]:
            if interrupted():
                pipe._interrupt = True  # diffusers stops before the next step
            return tensors

        seeds = [r.candidate_seed(i) for r in padded for i in range(len(r.weight_sets))]
        device = self.pipeline.device
        unet = self.pipeline.unet
        latents = self.pipeline(
            prompt_embeds=prompt_embeds.to(unet.dtype),
            negative_prompt_embeds=negative_embeds.to(unet.dtype),
            height=self.options.size,
            width=self.options.size,
            num_inference_steps=self.options.steps,
            guidance_scale=self.options.guidance_scale,
            generator=[torch.Generator(device=device).manual_seed(seed) for seed in seeds],
            output_type="latent",
            callback_on_step_end=stop_when_unwanted,
        ).images
        count = sum(len(r.weight_sets) for r in requests)
        pixels = decode(self.pipeline.vae, latents[:count])
        flags = safety_flags(self.pipeline, pixels)  # blacks out what it flags
        processor = self.pipeline.image_processor
        images = iter(zip(processor.numpy_to_pil(processor.pt_to_numpy(pixels)), seeds, flags, strict=False))
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
                        flagged=flagged,
                    )
                )
            sets.append(CandidateSet(candidates))
        return sets


@torch.no_grad()
def decode(vae, latents: torch.Tensor) -> torch.Tensor:  # (N, 3, H, W) in [0, 1], fp32
    """Latents to pixels. SD1.5's VAE can overflow in fp16 on some latents (NaN or inf pixels): that
    batch is decoded again in fp32, as diffusers upcasts SDXL's VAE."""
    scaled = latents / vae.config.scaling_factor
    image = vae.decode(scaled.to(vae.dtype), return_dict=False)[0]
    if not torch.isfinite(image).all() and vae.dtype != torch.float32:
        log.warning("the VAE overflowed in %s; decoding this batch in fp32", vae.dtype)
        half = vae.dtype
        vae.to(torch.float32)
        try:
            image = vae.decode(scaled.float(), return_dict=False)[0]
        finally:
            vae.to(half)
    return (image.float() / 2 + 0.5).clamp(0, 1)


@torch.no_grad()
def safety_flags(pipeline, pixels: torch.Tensor) -> list[bool]:
    """SD's own NSFW checker on the whole batch, on the generator's device: the images resized and
    normalised for its CLIP vision tower as its image processor would (square images: resize = crop)."""
    checker = pipeline.safety_checker
    if checker is None:
        return [False] * len(pixels)
    processor = pipeline.feature_extractor
    side = processor.crop_size["height"]
    mean = torch.tensor(processor.image_mean, device=pixels.device)[:, None, None]
    std = torch.tensor(processor.image_std, device=pixels.device)[:, None, None]
    resized = torch.nn.functional.interpolate(
        pixels, size=(side, side), mode="bicubic", antialias=True, align_corners=False
    )
    clip_input = ((resized - mean) / std).to(checker.dtype)
    _, flagged = checker(images=pixels, clip_input=clip_input)
    return [bool(f) for f in flagged]
