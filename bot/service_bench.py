"""`pmg bench service`: /sticker latency at 1, 4 and 16 concurrent users, and throughput with micro-batching
on and off, measured side by side in one run on the configured (or given) profile."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from typing import Annotated, Any

import typer

from bot.cli_support import err, load_engines, load_settings, out
from bot.settings import Profile, Settings

bench_app = typer.Typer(help="Benchmarks that print ratios measured side by side.", no_args_is_help=True)

CHARACTERS = ["🐱", "🐶", "🐼", "🐸", "🤖", "🦊", "🐰", "🐻", "🐷", "🐵", "🐯", "🐹", "🐭", "👻", "👽", "🐔"]
LINES = [
    "we won the finals!!",
    "they cancelled my flight home",
    "there's a spider in the shower",
    "so sleepy, pulled an all-nighter",
    "you remembered my birthday",
    "the landlord ignored me AGAIN",
    "wait WHAT, she's the new boss?",
    "ew the milk went off",
    "ok see you at 5",
]
SINGLE_REPEATS = 5


def _users(n: int) -> list[Any]:
    from pmg_engine.behaviors import StickerSent, UserBehaviors

    return [
        UserBehaviors(
            stickers=[StickerSent(CHARACTERS[i % len(CHARACTERS)])] * 4, conversation=[LINES[i % len(LINES)]]
        )
        for i in range(n)
    ]


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def _measure(settings: Settings, counts: list[int]) -> dict[str, Any]:
    from bot.service import StickerService
    from bot.sticker_engine import EngineRequest, StickerEngine

    stage1, stage2 = load_engines(settings)
    users = _users(max(counts))
    # The warm path: every user's preference keywords are cached, as after their first /sticker.
    cached = [u.preferences for u in stage1.understand(users)]
    requests = [
        EngineRequest(b, c, settings.alpha, settings.seed, personalized=True)
        for b, c in zip(users, cached, strict=True)
    ]

    async def run(n: int, max_batch: int, repeats: int = 1) -> tuple[list[float], float]:
        service: StickerService[EngineRequest, Any] = StickerService(
            StickerEngine.loaded(stage1, stage2, settings.weight_sets),
            queue_max=64,
            batch_window_s=settings.batch_window_ms / 1000,
            max_batch=max_batch,
        )
        await service.start()
        await service.request("warm-up", requests[0])
        latencies: list[float] = []

        async def one(i: int, round_: int) -> None:
            started = time.perf_counter()
            await service.request(f"user-{i}-{round_}", requests[i])
            latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        for round_ in range(repeats):
            await asyncio.gather(*(one(i, round_) for i in range(n)))
        wall = time.perf_counter() - started
        await service.stop()
        return latencies, wall

    single, _ = await run(1, settings.max_batch, repeats=SINGLE_REPEATS)
    rows: dict[str, dict[str, Any]] = {}
    for n in counts:
        for mode, max_batch in (("batched", settings.max_batch), ("unbatched", 1)):
            err.print(f"  {n} users, {mode} …", highlight=False)
            latencies, wall = await run(n, max_batch)
            rows[f"{n}_{mode}"] = {
                "users": n,
                "mode": mode,
                "p50_s": statistics.median(latencies),
                "p95_s": _percentile(latencies, 0.95),
                "per_min": n / wall * 60,
            }
    top = max(counts)
    return {
        "profile": settings.profile,
        "users": counts,
        "max_batch": settings.max_batch,
        "batch_window_ms": settings.batch_window_ms,
        "p50_single_s": statistics.median(single),
        "p95_single_s": _percentile(single, 0.95),
        "throughput_batched_per_min": rows[f"{top}_batched"]["per_min"],
        "throughput_unbatched_per_min": rows[f"{top}_unbatched"]["per_min"],
        "batching_ratio": rows[f"{top}_batched"]["per_min"] / rows[f"{top}_unbatched"]["per_min"],
        "rows": list(rows.values()),
    }


@bench_app.command("service")
def bench_service(
    profile: Annotated[
        Profile | None, typer.Option("--profile", help="offline or tiny (default: PMG_PROFILE).")
    ] = None,
    users: Annotated[
        list[int] | None, typer.Option("--users", help="Concurrent users per round (repeat).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Latency and throughput of /sticker through the sticker service, batching on vs off."""
    settings = load_settings(profile)
    report = asyncio.run(_measure(settings, sorted(users or [1, 4, 16])))
    if as_json:
        out.print_json(json.dumps(report))
        return
    out.print(
        f"profile {report['profile']}, max batch {report['max_batch']}, window {report['batch_window_ms']} ms",
        highlight=False,
    )
    out.print(
        f"single user, warm: p50 {report['p50_single_s']:.2f} s, p95 {report['p95_single_s']:.2f} s",
        highlight=False,
    )
    for row in report["rows"]:
        out.print(
            f"{row['users']:>3} users {row['mode']:<9} p50 {row['p50_s']:6.2f} s  p95 {row['p95_s']:6.2f} s  "
            f"{row['per_min']:6.1f} stickers/min",
            highlight=False,
        )
    out.print(
        f"batching ×{report['batching_ratio']:.2f} throughput at {max(report['users'])} users",
        highlight=False,
    )
