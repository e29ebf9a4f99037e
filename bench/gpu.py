"""`python -m bench.gpu [--json]`: the sd15 path on one CUDA GPU, at full size.

SD1.5 is built from its published configs with random weights (the real model's FLOPs, no download):
U-Net, VAE, CLIP ViT-L/14 text encoder and SD's safety checker, with a ViT-B-32 open_clip scorer. In one
run it prints the p50/p95 of one /sticker (5 candidates, 512 px, 20 steps, fp16, keywords cached),
stickers/min at 16 concurrent users with batching on and off, and peak VRAM; then the same with the
U-Net compiled (PMG_SD_COMPILE=1), its compile time apart. Stage 1 is not in these figures: every
user's keywords and mood come from the cache, as after their first sticker.

Without a CUDA GPU it refuses with one line. `--smoke` runs the same harness on the tiny random models
on whatever device there is (seconds; it checks the harness, its figures mean nothing)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

TARGET_P50_S = 1.0  # the target on an H100/H200: a whole 5-candidate sticker at 20 steps
TARGET_PER_MIN = 120.0  # at 16 concurrent users
# Public anchors (A100, SD1.5 512 px, batch 1, end to end, seconds per image).
ANCHORS = {"diffusers + SDPA": 1.60, "diffusers + SDPA + compile": 1.06, "TensorRT": 0.82}


class CachedStage1:
    """Stage 1 answered from the cache: each user's keywords and mood as their first sticker left them."""

    model_name = "cached keywords"

    def understand(self, users: Sequence[Any], cached: Sequence[Any] | None = None) -> list[Any]:
        from pmg_engine.mood_data import MoodPrediction
        from pmg_engine.understanding import Understanding

        assert cached is not None and all(c is not None for c in cached), "every user is cached here"
        return [
            Understanding(preferences, MoodPrediction("joy", {}), ["joyful", "big smile", "sparkling eyes"])
            for preferences in cached
        ]


def build_stage2(folder: Path, *, smoke: bool, steps: int, size: int | None) -> Any:
    """SD1.5 (full: on the GPU, fp16) or the tiny models, through the generator the sd15 profile uses."""
    from diffusers import StableDiffusionPipeline

    from pmg_engine.diffusion import DiffusionGenerator, DiffusionOptions, default_device
    from pmg_engine.random_models import build_clip_scorer, sd_components
    from pmg_engine.safety import KeywordDenyList
    from pmg_engine.scoring import ClipScorer
    from pmg_engine.stickers import StickerMaker

    device = default_device()
    with torch.device(device):  # random weights drawn where they will run: seconds, not minutes
        components = sd_components("tiny" if smoke else "full")
    pipeline = StableDiffusionPipeline(**components, requires_safety_checker=not smoke)
    if device == "cuda":
        pipeline = pipeline.to(torch.float16)
    options = DiffusionOptions(steps=steps, size=size)
    generator = DiffusionGenerator.ready(pipeline, "random SD1.5 from configs", options, device)
    clip_config, clip_weights = build_clip_scorer(folder / "clip", size="tiny" if smoke else "full")
    scorer = ClipScorer(str(clip_config), clip_weights, device=device)
    return StickerMaker(generator, scorer, gate=None, deny_list=KeywordDenyList())


def requests(users: int) -> list[Any]:
    from bot.service_bench import CHARACTERS
    from bot.sticker_engine import EngineRequest
    from pmg_engine.behaviors import StickerSent, UserBehaviors
    from pmg_engine.preferences import Preferences

    made = []
    for i in range(users):
        character = CHARACTERS[i % len(CHARACTERS)]
        behaviors = UserBehaviors(stickers=[StickerSent(character)] * 4, conversation=["we won!!"])
        cached = Preferences([f"character {i}", "flat colors", "pastel", "stars"], f"character {i}")
        made.append(EngineRequest(behaviors, cached, 0.5, 1000 + i, personalized=False))
    return made


async def measure(stage2: Any, users: int, max_batch: int, single_repeats: int) -> dict[str, Any]:
    """p50/p95 of one sticker, then `users` at once with batching on and off, and peak VRAM."""
    from bot.service_bench import local_backend, measure_backend
    from bot.settings import Settings

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    settings = Settings(profile="sd15", max_batch=max_batch)
    measured = await measure_backend(
        local_backend(CachedStage1(), stage2, settings),
        requests(users),
        [users],
        max_batch,
        "gpu",
        single_repeats=single_repeats,
    )
    if torch.cuda.is_available():
        measured["peak_vram_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return measured


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pmg-bench-gpu-") as temp:
        stage2 = build_stage2(Path(temp), smoke=args.smoke, steps=args.steps, size=args.size)
        built = time.perf_counter() - started
        report: dict[str, Any] = {
            "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
            "smoke": args.smoke,
            "torch": torch.__version__,
            "steps": args.steps,
            "candidates": 5,
            "users": args.users,
            "max_batch": args.max_batch,
            "build_s": round(built, 1),
            "eager": asyncio.run(measure(stage2, args.users, args.max_batch, args.single_repeats)),
        }
        if not args.skip_compile:
            backend = "eager" if args.smoke else "inductor"  # the smoke run checks the harness, not inductor
            compile_s = stage2.generator.compile(args.max_batch, stage2_weights(), backend=backend)
            compiled = asyncio.run(measure(stage2, args.users, args.max_batch, args.single_repeats))
            report["compiled"] = {"compile_s": round(compile_s, 1), **compiled}
    report["targets"] = {"p50_s": TARGET_P50_S, "stickers_per_min": TARGET_PER_MIN, "a100_anchors_s": ANCHORS}
    report["wall_s"] = round(time.perf_counter() - started, 1)
    return report


def stage2_weights() -> list[tuple[float, float]]:
    from bot.settings import Settings

    return list(Settings().weight_sets)


def print_report(report: dict[str, Any]) -> None:
    models = "tiny models (smoke: figures mean nothing)" if report["smoke"] else "SD1.5 full size"
    print(
        f"{report['device']}: {models}, random weights, {report['candidates']} candidates × "
        f"{report['steps']} steps; built in {report['build_s']} s"
    )
    for label in ("eager", "compiled"):
        if label not in report:
            continue
        row = report[label]
        extra = f" (compiled in {row['compile_s']} s at start-up)" if label == "compiled" else ""
        print(
            f"{label}{extra}: one sticker p50 {row['p50_single_s']:.2f} s, p95 {row['p95_single_s']:.2f} s; "
            f"{report['users']} users: {row['throughput_batched_per_min']:.0f} stickers/min batched, "
            f"{row['throughput_unbatched_per_min']:.0f} unbatched (×{row['batching_ratio']:.2f}); "
            f"peak VRAM {row.get('peak_vram_gb', 'n/a')} GB"
        )
    targets = report["targets"]
    print(
        f"targets: p50 ≤ {targets['p50_s']} s per sticker, ≥ {targets['stickers_per_min']:.0f} stickers/min; "
        f"A100 anchors per image: {', '.join(f'{k} {v} s' for k, v in targets['a100_anchors_s'].items())}; "
        f"wall {report['wall_s']} s"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--users", type=int, default=16, help="concurrent users (default 16)")
    parser.add_argument("--max-batch", type=int, default=8, help="requests per batch (PMG_MAX_BATCH)")
    parser.add_argument("--steps", type=int, default=20, help="denoising steps (PMG_SD_STEPS)")
    parser.add_argument("--size", type=int, default=None, help="pixels per side (default: 512)")
    parser.add_argument("--single-repeats", type=int, default=20, help="single stickers for p50/p95")
    parser.add_argument("--skip-compile", action="store_true", help="leave out the PMG_SD_COMPILE=1 run")
    parser.add_argument("--smoke", action="store_true", help="tiny models, any device: checks the harness")
    args = parser.parse_args(argv)
    if not args.smoke and not torch.cuda.is_available():
        print("bench.gpu needs a CUDA GPU and none is visible here (torch.cuda.is_available() is False)")
        return 2
    report = run(args)
    if args.json:
        print(json.dumps(report))
    else:
        print_report(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
