"""`python -m bench.gpu`, run as its README line runs it: refuses in one line without a CUDA GPU; its
harness runs end to end on the tiny models (`--smoke`), so the one short GPU run it is made for does not
fail on a harness bug."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def bench_gpu(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "bench.gpu", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: the benchmark would run")
def test_without_a_gpu_it_refuses_in_one_line() -> None:
    done = bench_gpu()
    assert done.returncode == 2
    assert done.stdout.count("\n") == 1 and "needs a CUDA GPU" in done.stdout


def test_the_smoke_run_reports_every_figure() -> None:
    done = bench_gpu(
        "--smoke", "--json", "--users", "4", "--max-batch", "2", "--steps", "2", "--single-repeats", "3"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.splitlines()[-1])
    for label in ("eager", "compiled"):
        row = report[label]
        assert row["p50_single_s"] > 0 and row["p95_single_s"] >= row["p50_single_s"]
        assert row["throughput_batched_per_min"] > 0 and row["throughput_unbatched_per_min"] > 0
        assert [r["mode"] for r in row["rows"]] == ["batched", "unbatched"]
    assert report["compiled"]["compile_s"] > 0
    assert report["targets"]["p50_s"] == 1.0 and report["targets"]["stickers_per_min"] == 120.0
