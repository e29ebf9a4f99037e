"""Benchmark: the sticker service's latency and throughput, batching on vs off (= `pmg bench service`)."""

from __future__ import annotations

from bot.service_bench import bench_app

if __name__ == "__main__":
    bench_app(["service"], standalone_mode=True)
