"""Benchmark: the sticker service's latency and throughput, batching on vs off (= `pmg bench service`)."""

from __future__ import annotations

import typer

from bot.service_bench import bench_service

if __name__ == "__main__":
    typer.run(bench_service)
