"""What makes the sd15 path fast on a GPU, checked here on the tiny pipeline: half precision with fp32
soft embeddings, the fp16 VAE's overflow redone in fp32, the U-Net compiled at start-up for every batch
size it will see, the largest batch that fits, and CUDA's out-of-memory error splitting a batch.
No GPU runs here: half precision runs on the CPU, and where only a GPU can fail (out of memory) the
generator is made to raise CUDA's own error type."""

from __future__ import annotations

import logging
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch._dynamo.utils import counters

from bot.service import ServiceMetrics, run_isolated
from bot.sticker_engine import EngineRequest, StickerEngine
from pmg_engine.behaviors import UserBehaviors
from pmg_engine.candidates import StickerRequest
from pmg_engine.diffusion import DiffusionGenerator, DiffusionOptions, compile_buckets, decode
from pmg_engine.random_models import TinyModels

WEIGHTS = [(0.0, 4.0), (1.0, 3.0), (2.0, 2.0), (3.0, 1.0), (4.0, 0.0)]
OOM = "CUDA out of memory. Tried to allocate 2.50 GiB (GPU 0; 79.11 GiB total capacity)"


def load(tiny_models: TinyModels, **options: object) -> DiffusionGenerator:
    return DiffusionGenerator.load(
        str(tiny_models.sd_folder), options=DiffusionOptions(steps=2), safety_checker=False, **options
    )


def request(seed: int) -> StickerRequest:
    return StickerRequest(["cat", "orange"], ["sad", "frown"], "sadness", WEIGHTS, seed=seed)


def pixels(generator: DiffusionGenerator, requests: list[StickerRequest]) -> list[np.ndarray]:
    sets = generator.generate(requests)
    return [np.asarray(c.image, dtype=np.int16) for s in sets for c in s.candidates]


def test_a_half_precision_pipeline_takes_fp32_soft_embeddings(tiny_models: TinyModels) -> None:
    """bf16 here stands in for CUDA's fp16: the LLM's fp32 E_m must meet the text encoder's dtype."""
    generator = load(tiny_models, dtype=torch.bfloat16)
    assert generator.pipeline.unet.dtype == torch.bfloat16
    soft = torch.randn(4, 32, dtype=torch.float32)
    [candidates] = generator.generate([replace(request(1), soft_embeddings=soft)])
    assert len(candidates.candidates) == 5
    assert all(c.image.size == (64, 64) for c in candidates.candidates)


def test_an_fp16_vae_that_overflows_decodes_again_in_fp32(
    tiny_models: TinyModels, caplog: pytest.LogCaptureFixture
) -> None:
    vae = load(tiny_models, dtype=torch.float16).pipeline.vae
    huge = torch.full((2, 4, 32, 32), 3e4)  # past fp16's 65,504 once scaled up inside the decoder
    with caplog.at_level(logging.WARNING, logger="pmg_engine.diffusion"):
        image = decode(vae, huge)
    assert image.dtype == torch.float32 and bool(torch.isfinite(image).all())
    assert "overflowed" in caplog.text
    assert vae.dtype == torch.float16  # back in half precision for the next batch


def test_compile_buckets_cover_every_batch_up_to_the_limit() -> None:
    assert compile_buckets(1) == [1]
    assert compile_buckets(8) == [1, 2, 4, 8]
    assert compile_buckets(6) == [1, 2, 4, 6]


def test_the_compiled_unet_is_built_at_start_up_for_every_batch_size(tiny_models: TinyModels) -> None:
    """The eager backend stands in for inductor (minutes of C++ here): the graphs are what matter."""
    plain = load(tiny_models)
    compiled = load(tiny_models)
    compiled.compile(4, WEIGHTS, backend="eager")
    assert compiled.buckets == [1, 2, 4]
    graphs = counters["stats"]["unique_graphs"]

    three = [request(10), request(20), request(30)]  # padded to the 4-request graph
    assert len(compiled.generate(three)) == 3
    compiled.generate([request(40)])
    assert counters["stats"]["unique_graphs"] == graphs  # no user waited for a compilation
    for got, want in zip(pixels(compiled, three), pixels(plain, three), strict=True):
        assert np.abs(got - want).max() <= 2  # padding changes nobody's candidates


def test_the_largest_batch_that_fits_is_found_by_halving(
    tiny_models: TinyModels, monkeypatch: pytest.MonkeyPatch
) -> None:
    generator = load(tiny_models)
    tried: list[int] = []
    real_generate = generator.generate

    def generate_on_a_small_gpu(requests, **kwargs):  # type: ignore[no-untyped-def]
        tried.append(len(requests))
        if len(requests) > 2:
            raise torch.OutOfMemoryError(OOM)  # what CUDA raises; no GPU here to run out
        return real_generate(requests, **kwargs)

    monkeypatch.setattr(generator, "generate", generate_on_a_small_gpu)
    assert generator.largest_batch(8, WEIGHTS) == 2
    assert tried == [8, 4, 2]
    assert generator.options.steps == 2  # the one-step probe leaves the options as they were


class SmallGpuStage2:
    """Stage 2 on a GPU that holds two requests: larger batches raise CUDA's out-of-memory error."""

    def __init__(self) -> None:
        self.batches: list[int] = []
        self.models: dict[str, str] = {}

    def make(self, requests, alphas, *, interrupted=lambda: False):  # type: ignore[no-untyped-def]
        if len(requests) > 2:
            raise torch.OutOfMemoryError(OOM)
        self.batches.append(len(requests))
        return [SimpleNamespace(notes=[], mood=r.mood) for r in requests]

    def use_checkpoint(self, version, path):  # type: ignore[no-untyped-def]
        return None


class FixedStage1:
    model_name = "scripted"

    def understand(self, users, cached=None):  # type: ignore[no-untyped-def]
        from pmg_engine.mood_data import MoodPrediction
        from pmg_engine.preferences import Preferences
        from pmg_engine.understanding import Understanding

        return [
            Understanding(Preferences(["cat"], "cat"), MoodPrediction("joy", {}), ["happy"]) for _ in users
        ]


def test_cuda_out_of_memory_splits_the_batch_until_it_fits() -> None:
    stage2 = SmallGpuStage2()
    engine = StickerEngine.loaded(FixedStage1(), stage2, WEIGHTS)  # type: ignore[arg-type]
    engine.load()
    requests = [EngineRequest(UserBehaviors(), None, 0.5, seed, False, None) for seed in range(5)]
    metrics = ServiceMetrics()

    outcomes = run_isolated(engine, requests, lambda: False, metrics)

    assert [o.result.mood for o in outcomes] == ["joy"] * 5  # type: ignore[union-attr]
    assert sorted(stage2.batches) == [1, 2, 2] and metrics.splits >= 2
