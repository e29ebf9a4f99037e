"""`pmg bench service`: /sticker latency at 1, 4 and 16 concurrent users, and throughput with micro-batching
on and off, measured side by side in one run on the configured (or given) profile."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated, Any

import typer

from bot.cli_support import err, fail, load_engines, load_settings, out
from bot.ray_backend import BackendUnavailable
from bot.service import StickerBackend
from bot.settings import Profile, Settings
from bot.sticker_engine import EngineRequest

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
BENCH_APP = "pmg-bench"  # its own application: a running `pmg serve` is left alone


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


async def _rounds(
    backend: StickerBackend[Any, Any], requests: list[Any], n: int, repeats: int = 1
) -> tuple[list[float], float]:
    """`repeats` rounds of `n` users asking at once: each request's latency, and the wall time."""
    latencies: list[float] = []

    async def one(i: int, round_: int) -> None:
        started = time.perf_counter()
        await backend.request(f"user-{i}-{round_}", requests[i])
        latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    for round_ in range(repeats):
        await asyncio.gather(*(one(i, round_) for i in range(n)))
    return latencies, time.perf_counter() - started


OpenBackend = Callable[[int], AbstractAsyncContextManager[StickerBackend[Any, Any]]]


async def measure_backend(
    open_backend: OpenBackend,
    requests: list[Any],
    counts: list[int],
    max_batch: int,
    label: str,
    *,
    single_repeats: int = SINGLE_REPEATS,
) -> dict[str, Any]:
    """Warm single-user latency, then each count of users with batching on (max_batch) and off (1)."""
    async with open_backend(max_batch) as backend:
        await asyncio.gather(*(backend.request(f"warm-up-{i}", requests[i]) for i in range(2)))
        single, _ = await _rounds(backend, requests, 1, repeats=single_repeats)
    rows: dict[str, dict[str, Any]] = {}
    for mode, batch in (("batched", max_batch), ("unbatched", 1)):
        async with open_backend(batch) as backend:
            await backend.request("warm-up", requests[0])
            for n in counts:
                err.print(f"  {label}: {n} users, {mode} …", highlight=False)
                latencies, wall = await _rounds(backend, requests, n)
                rows[f"{n}_{mode}"] = {
                    "users": n,
                    "mode": mode,
                    "p50_s": statistics.median(latencies),
                    "p95_s": _percentile(latencies, 0.95),
                    "per_min": n / wall * 60,
                }
    top = max(counts)
    return {
        "p50_single_s": statistics.median(single),
        "p95_single_s": _percentile(single, 0.95),
        "throughput_batched_per_min": rows[f"{top}_batched"]["per_min"],
        "throughput_unbatched_per_min": rows[f"{top}_unbatched"]["per_min"],
        "batching_ratio": rows[f"{top}_batched"]["per_min"] / rows[f"{top}_unbatched"]["per_min"],
        "rows": list(rows.values()),
    }


def local_backend(stage1: Any, stage2: Any, settings: Settings) -> OpenBackend:
    @asynccontextmanager
    async def open_backend(max_batch: int) -> AsyncIterator[StickerBackend[Any, Any]]:
        from bot.service import StickerService
        from bot.sticker_engine import StickerEngine

        service: StickerService[Any, Any] = StickerService(
            StickerEngine.loaded(stage1, stage2, settings.weight_sets),
            queue_max=64,
            batch_window_s=settings.batch_window_ms / 1000,
            max_batch=max_batch,
        )
        await service.start()
        try:
            yield service
        finally:
            await service.stop()

    return open_backend


def _on_ray(settings: Settings) -> OpenBackend:
    """The same engine as a Serve application on the cluster, redeployed for each batch size."""

    @asynccontextmanager
    async def open_backend(max_batch: int) -> AsyncIterator[StickerBackend[Any, Any]]:
        from bot.ray_backend import RayStickerBackend
        from bot.ray_deployment import deploy

        deployed = settings.model_copy(update={"max_batch": max_batch})
        await asyncio.to_thread(deploy, deployed)  # returns once every replica has loaded the models
        backend = RayStickerBackend.connect(deployed)
        try:
            yield backend
        finally:
            await backend.stop()

    return open_backend


def _ray_cluster(settings: Settings) -> bool:
    """Join PMG_RAY_ADDRESS; with the default `auto` and no cluster running, start one in this process
    (True), so the comparison runs on one machine without a `ray start` first."""
    from bot.ray_backend import BackendUnavailable, join_cluster

    try:
        join_cluster(settings)
        return False
    except BackendUnavailable:
        if settings.ray_address != "auto":
            raise
    import ray

    err.print("no Ray cluster is running: starting a local one for the benchmark", highlight=False)
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    return True


async def _compare(settings: Settings, counts: list[int], backend: str, replicas: int) -> dict[str, Any]:
    stage1, stage2 = load_engines(settings)
    users = _users(max(counts))
    # The warm path: every user's preference keywords are cached, as after their first /sticker.
    cached = [u.preferences for u in stage1.understand(users)]
    requests = [
        EngineRequest(b, c, settings.alpha, settings.seed, personalized=True)
        for b, c in zip(users, cached, strict=True)
    ]
    report: dict[str, Any] = {
        "profile": settings.profile,
        "users": counts,
        "max_batch": settings.max_batch,
        "batch_window_ms": settings.batch_window_ms,
        "backend": "local",
        **await measure_backend(
            local_backend(stage1, stage2, settings), requests, counts, settings.max_batch, "local"
        ),
    }
    if backend == "ray":
        report["ray"] = await _measure_ray(settings, requests, counts, replicas)
        report["ray_p50_overhead"] = report["ray"]["p50_single_s"] / report["p50_single_s"] - 1
        report["ray_throughput_ratio"] = (
            report["ray"]["throughput_batched_per_min"] / report["throughput_batched_per_min"]
        )
    return report


async def _measure_ray(
    settings: Settings, requests: list[Any], counts: list[int], replicas: int
) -> dict[str, Any]:
    from ray import serve

    from bot.ray_deployment import cluster_status

    started_here = await asyncio.to_thread(_ray_cluster, settings)
    # Each replica gets its share of this host's cores, as many threads as the local run has.
    settings = settings.model_copy(
        update={
            "ray_app": BENCH_APP,
            "ray_replicas": replicas,
            "ray_cpus_per_replica": max(1.0, (os.cpu_count() or 1) / replicas),
        }
    )
    try:
        measured = await measure_backend(_on_ray(settings), requests, counts, settings.max_batch, "ray")
        queues = cluster_status(BENCH_APP).get("replica_queues", {})
        assert isinstance(queues, dict)
        measured["replicas"] = replicas
        measured["replica_peak_memory_mb"] = sorted(q["peak_memory_mb"] for q in queues.values())
        return measured
    finally:
        serve.delete(BENCH_APP)
        if started_here:
            serve.shutdown()
            import ray

            ray.shutdown()


def _print_rows(label: str, measured: dict[str, Any]) -> None:
    out.print(
        f"{label}: single user, warm: p50 {measured['p50_single_s']:.2f} s, p95 {measured['p95_single_s']:.2f} s",
        highlight=False,
    )
    for row in measured["rows"]:
        out.print(
            f"{label}: {row['users']:>3} users {row['mode']:<9} p50 {row['p50_s']:6.2f} s  "
            f"p95 {row['p95_s']:6.2f} s  {row['per_min']:6.1f} stickers/min",
            highlight=False,
        )


@bench_app.command("service")
def bench_service(
    profile: Annotated[
        Profile | None, typer.Option("--profile", help="offline or tiny (default: PMG_PROFILE).")
    ] = None,
    users: Annotated[
        list[int] | None, typer.Option("--users", help="Concurrent users per round (repeat).")
    ] = None,
    backend: Annotated[
        str,
        typer.Option(
            "--backend", help="local, or ray: the same rounds on a Ray Serve deployment beside local."
        ),
    ] = "local",
    replicas: Annotated[int, typer.Option("--replicas", min=1, help="With --backend ray.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Latency and throughput of /sticker through the sticker service, batching on vs off; with
    --backend ray, side by side with the same engine as a Ray Serve application."""
    if backend not in ("local", "ray"):
        fail(f"--backend must be local or ray, not {backend!r}", code=2)
    settings = load_settings(profile)
    counts = sorted(users or [1, 4, 16])
    try:
        report = asyncio.run(_compare(settings, counts, backend, replicas))
    except BackendUnavailable as error:
        fail(str(error))
    if as_json:
        out.print_json(json.dumps(report))
        return
    out.print(
        f"profile {report['profile']}, max batch {report['max_batch']}, window {report['batch_window_ms']} ms",
        highlight=False,
    )
    _print_rows("local", report)
    top = max(counts)
    out.print(f"local: batching ×{report['batching_ratio']:.2f} throughput at {top} users", highlight=False)
    if "ray" in report:
        ray_report = report["ray"]
        _print_rows(f"ray ×{ray_report['replicas']}", ray_report)
        out.print(
            f"ray: batching ×{ray_report['batching_ratio']:.2f} throughput at {top} users; "
            f"single-user p50 {report['ray_p50_overhead']:+.0%} against local; "
            f"stickers/min at {top} users ray/local ×{report['ray_throughput_ratio']:.2f}; "
            f"replica peak memory {', '.join(f'{mb} MB' for mb in ray_report['replica_peak_memory_mb'])}",
            highlight=False,
        )
