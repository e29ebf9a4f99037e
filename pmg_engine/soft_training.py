"""Training the soft preference embeddings (paper §3.3.2) with the frozen generator's diffusion loss: the
user's last sticker is the supervision, the behaviors before it the input; only E_m's parts learn."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from pmg_engine.behaviors import UserBehaviors
from pmg_engine.conditioning import EncodedPrompt, encode_prompts, fit_condition, preference_rows
from pmg_engine.prompts import soft_prompt
from pmg_engine.soft_prompt import SoftPromptModel


@dataclass(frozen=True)
class SoftExample:
    """One user's example: behaviors before their last sticker, their keywords k^p, that sticker's image.
    `weight`: how often it is drawn into a batch relative to the others (chosen stickers count less)."""

    user: str
    behaviors: UserBehaviors
    keywords: list[str]
    image: Image.Image
    weight: float = 1.0


@dataclass(frozen=True)
class TrainingPlan:
    steps: int
    batch_size: int
    learning_rate: float
    seed: int = 0


@dataclass
class Progress:
    """What a progress report shows: the step, the loss (mean of the last few), the seconds left."""

    step: int
    steps: int
    loss: float
    eta_s: float


@dataclass
class TrainingResult:
    losses: list[float] = field(default_factory=list)  # one per step taken in this run
    steps_done: int = 0  # counted from the start of the plan (a resumed run starts above 0)
    stopped: bool = False  # cancelled before the plan's last step
    optimizer_state: dict[str, object] = field(default_factory=dict)


def on_white(image: Image.Image, side: int) -> Image.Image:
    """A sticker as the VAE sees it: transparency flattened onto white, square, `side` px."""
    rgba = image.convert("RGBA")
    flat = Image.new("RGB", rgba.size, "white")
    flat.paste(rgba, mask=rgba.getchannel("A"))
    return flat.resize((side, side), Image.Resampling.LANCZOS)


class DiffusionObjective:
    """The frozen SD1.5-architecture generator as a loss: noise the latent of the target sticker, predict
    the noise from the condition [BOS, E_m, E_k, padding], mean squared error (ε-prediction)."""

    def __init__(self, pipeline, *, side: int | None = None) -> None:  # a diffusers StableDiffusionPipeline
        """`side`: the pixels per side stickers are drawn at (PMG_SD_SIZE); None: the U-Net's own."""
        from diffusers import DDPMScheduler

        self.pipeline = pipeline
        for part in (pipeline.unet, pipeline.vae, pipeline.text_encoder):
            part.requires_grad_(False)
        self.scheduler = DDPMScheduler.from_config(pipeline.scheduler.config)  # training noise schedule
        self.side = side or pipeline.unet.config.sample_size * pipeline.vae_scale_factor
        self.device = pipeline.unet.device
        _, hidden = encode_prompts(pipeline.tokenizer, pipeline.text_encoder, [""])
        self.empty = hidden[0]  # (77, D)

    @torch.no_grad()
    def latents(self, images: Sequence[Image.Image]) -> torch.Tensor:  # (N, 4, h, w)
        vae = self.pipeline.vae
        pixels = (
            torch.stack(
                [torch.from_numpy(np.array(on_white(i, self.side))).permute(2, 0, 1) for i in images]
            ).to(self.device, vae.dtype)
            / 127.5
            - 1.0
        )
        return vae.encode(pixels).latent_dist.mode() * vae.config.scaling_factor

    def keyword_rows(self, keywords: Sequence[list[str]]) -> list[EncodedPrompt]:
        texts = [", ".join(k) for k in keywords]
        encoded, _ = encode_prompts(self.pipeline.tokenizer, self.pipeline.text_encoder, texts)
        return encoded

    def loss(
        self,
        soft: torch.Tensor | None,  # (B, L, D) or None: keywords alone (no checkpoint)
        keywords: Sequence[EncodedPrompt],
        latents: torch.Tensor,  # (B, 4, h, w)
        generator: torch.Generator,
    ) -> torch.Tensor:
        batch = latents.shape[0]
        noise = torch.randn(latents.shape, generator=generator).to(latents)
        steps = torch.randint(0, self.scheduler.config.num_train_timesteps, (batch,), generator=generator)
        noisy = self.scheduler.add_noise(latents, noise, steps.to(self.device))
        target_rows = self.empty[:0]
        conditions = torch.stack(
            [
                fit_condition(
                    self.empty, preference_rows(k, None if soft is None else soft[i]), target_rows, (1.0, 0.0)
                )
                for i, k in enumerate(keywords)
            ]
        )  # (B, 77, D)
        predicted = self.pipeline.unet(noisy, steps.to(self.device), encoder_hidden_states=conditions).sample
        return torch.nn.functional.mse_loss(predicted.float(), noise.float())


class SoftTrainer:
    """Mini-batches of examples through the bias-correction LLM and the diffusion objective."""

    def __init__(
        self, model: SoftPromptModel, objective: DiffusionObjective, examples: Sequence[SoftExample]
    ) -> None:
        self.model = model
        self.objective = objective
        self.examples = list(examples)
        self.prompts = [soft_prompt(e.behaviors) for e in self.examples]
        self.keywords = objective.keyword_rows([e.keywords for e in self.examples])
        self.latents = objective.latents([e.image for e in self.examples])
        self.weights = torch.tensor([e.weight for e in self.examples], dtype=torch.float)

    def _batch_loss(self, indices: list[int], generator: torch.Generator, *, soft: bool) -> torch.Tensor:
        e_m = self.model([self.prompts[i] for i in indices]) if soft else None
        return self.objective.loss(e_m, [self.keywords[i] for i in indices], self.latents[indices], generator)

    @torch.no_grad()
    def validation_loss(self, *, soft: bool = True, seed: int = 1234, rounds: int = 4) -> float:
        """The mean loss over every example with fixed noise and timesteps: comparable across models."""
        generator = torch.Generator().manual_seed(seed)
        losses = [
            self._batch_loss([i], generator, soft=soft).item()
            for _ in range(rounds)
            for i in range(len(self.examples))
        ]
        return sum(losses) / len(losses)

    def train(
        self,
        plan: TrainingPlan,
        *,
        start_step: int = 0,
        optimizer_state: dict[str, object] | None = None,
        progress: Callable[[Progress], None] = lambda report: None,
        should_stop: Callable[[], bool] = lambda: False,
        snapshot: Callable[[int, dict[str, object]], None] = lambda step, optimizer_state: None,
        snapshot_every: int = 25,
    ) -> TrainingResult:
        """AdamW on the trainable parts from `start_step` to `plan.steps`; stops early when asked, and
        hands `snapshot` the step and optimizer state every `snapshot_every` steps (for resuming)."""
        parameters = [p for p in self.model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(parameters, lr=plan.learning_rate, weight_decay=0.0)
        if optimizer_state:
            optimizer.load_state_dict(optimizer_state)
        # Noise, timesteps and batches: a resumed run draws anew rather than replaying the first steps.
        generator = torch.Generator().manual_seed(plan.seed * 100_003 + start_step)
        result = TrainingResult(steps_done=start_step)
        started = time.perf_counter()
        self.model.train()
        for step in range(start_step, plan.steps):
            if should_stop():
                result.stopped = True
                break
            picks = torch.multinomial(
                self.weights, min(plan.batch_size, len(self.examples)), replacement=True, generator=generator
            )
            loss = self._batch_loss(picks.tolist(), generator, soft=True)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            result.losses.append(loss.item())
            result.steps_done = step + 1
            done = step + 1 - start_step
            per_step = (time.perf_counter() - started) / done
            recent = result.losses[-10:]
            progress(
                Progress(step + 1, plan.steps, sum(recent) / len(recent), per_step * (plan.steps - step - 1))
            )
            if (step + 1) % snapshot_every == 0 and step + 1 < plan.steps:
                snapshot(step + 1, optimizer.state_dict())
        self.model.eval()
        result.optimizer_state = optimizer.state_dict()
        if any(math.isnan(loss) for loss in result.losses):
            raise FloatingPointError("the training loss became NaN; lower PMG_TRAIN_LEARNING_RATE")
        return result
