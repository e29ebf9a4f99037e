"""The sticker service on a fake engine whose timing the test controls (the real engine is minutes of
CPU per batch): refusal, FIFO, batching, coalescing, cancellation, deadlines, isolation, restarts."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import pytest

from bot.service import (
    BatchTooLarge,
    DeadlineExceeded,
    EngineBroken,
    RequestCancelled,
    ServiceBusy,
    ServiceProgress,
    ServiceStopped,
    StickerService,
)


class FakeEngine:
    """Runs string requests; `gate` holds every run until set; "fail…" requests raise; a run polls
    `interrupted` as a diffusion loop would between steps."""

    def __init__(self, *, failing_loads: int = 0, max_batch_memory: int | None = None) -> None:
        self.gate = threading.Event()
        self.gate.set()
        self.load_gate = threading.Event()
        self.load_gate.set()
        self.failing_loads = failing_loads
        self.max_batch_memory = max_batch_memory
        self.batches: list[list[str]] = []
        self.broken_once = False
        self.interrupted_runs = 0

    def load(self) -> None:
        self.load_gate.wait(5)
        if self.failing_loads:
            self.failing_loads -= 1
            raise RuntimeError("model file missing")

    def run(self, requests: list[str], interrupted: Callable[[], bool]) -> list[str]:
        if "break" in requests and not self.broken_once:
            self.broken_once = True
            raise EngineBroken("device lost")
        if self.max_batch_memory is not None and len(requests) > self.max_batch_memory:
            raise BatchTooLarge
        self.batches.append(list(requests))
        deadline = time.monotonic() + 5
        while not self.gate.is_set() and time.monotonic() < deadline:
            if interrupted():
                self.interrupted_runs += 1
                return ["interrupted"] * len(requests)
            time.sleep(0.005)
        if any(r.startswith("fail") for r in requests):
            raise ValueError("bad request")
        return [f"done:{r}" for r in requests]


async def started(engine: FakeEngine, **options: float) -> StickerService[str, str]:
    service: StickerService[str, str] = StickerService(engine, restart_delay_s=0.01, **options)  # type: ignore[arg-type]
    await service.start()
    return service


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never became true")


async def test_a_full_queue_refuses_at_once_with_a_retry_estimate() -> None:
    engine = FakeEngine()
    engine.gate.clear()
    service = await started(engine, queue_max=2, max_batch=1, batch_window_s=0)
    running = asyncio.create_task(service.request("u0", "a"))
    await until(lambda: len(engine.batches) == 1)
    queued = [asyncio.create_task(service.request(f"u{i}", f"q{i}")) for i in (1, 2)]
    await until(lambda: service.queue_length() == 2)

    with pytest.raises(ServiceBusy, match=r"try again in ~\d+ s") as refused:
        await service.request("u3", "late")

    assert refused.value.retry_after_s >= 1 and service.metrics.refused == 1
    engine.gate.set()
    assert await asyncio.gather(running, *queued) == ["done:a", "done:q1", "done:q2"]
    await service.stop()


async def test_requests_run_first_come_first_served() -> None:
    engine = FakeEngine()
    engine.gate.clear()
    service = await started(engine, max_batch=1, batch_window_s=0)
    tasks = [asyncio.create_task(service.request(f"u{i}", f"r{i}")) for i in range(4)]
    await until(lambda: len(engine.batches) == 1)
    engine.gate.set()
    await asyncio.gather(*tasks)
    assert engine.batches == [["r0"], ["r1"], ["r2"], ["r3"]]
    await service.stop()


async def test_concurrent_requests_share_one_batch_and_hear_their_place() -> None:
    engine = FakeEngine()
    service = await started(engine, max_batch=8, batch_window_s=0.2)
    await until(service.ready.is_set)
    heard: list[ServiceProgress] = []
    results = await asyncio.gather(
        *(service.request(f"u{i}", f"r{i}", progress=heard.append) for i in range(5))
    )
    assert results == [f"done:r{i}" for i in range(5)]
    assert engine.batches == [[f"r{i}" for i in range(5)]]
    assert [p.position for p in heard if p.stage == "queued"] == [1, 2, 3, 4, 5]
    assert service.metrics.batch_sizes == {5: 1}
    await service.stop()


async def test_a_repeat_while_pending_gets_the_pending_result() -> None:
    engine = FakeEngine()
    engine.gate.clear()
    service = await started(engine, batch_window_s=0)
    first = asyncio.create_task(service.request("ann", "sticker-1"))
    await until(lambda: len(engine.batches) == 1)
    repeat = asyncio.create_task(service.request("ann", "sticker-2"))
    await asyncio.sleep(0.02)
    engine.gate.set()
    assert await asyncio.gather(first, repeat) == ["done:sticker-1", "done:sticker-1"]
    assert engine.batches == [["sticker-1"]] and service.metrics.coalesced == 1
    await service.stop()


async def test_cancel_before_the_run_drops_it_and_during_the_run_interrupts_it() -> None:
    engine = FakeEngine()
    engine.gate.clear()
    service = await started(engine, max_batch=1, batch_window_s=0)
    running = asyncio.create_task(service.request("ann", "long"))
    await until(lambda: len(engine.batches) == 1)
    waiting = asyncio.create_task(service.request("bob", "queued"))
    await until(lambda: service.queue_length() == 1)

    assert service.cancel("bob") and service.cancel("ann")
    assert not service.cancel("nobody")

    with pytest.raises(RequestCancelled):
        await waiting
    with pytest.raises(RequestCancelled):
        await running
    assert engine.interrupted_runs == 1
    assert engine.batches == [["long"]]  # bob's never ran
    assert service.metrics.cancelled == 2
    await service.stop()


async def test_a_request_past_its_deadline_is_dropped_before_it_runs() -> None:
    engine = FakeEngine()
    engine.gate.clear()
    service = await started(engine, max_batch=1, batch_window_s=0)
    blocker = asyncio.create_task(service.request("ann", "slow"))
    await until(lambda: len(engine.batches) == 1)
    late = asyncio.create_task(service.request("bob", "late", deadline_s=0.05))
    await asyncio.sleep(0.1)
    engine.gate.set()
    with pytest.raises(DeadlineExceeded):
        await late
    assert await blocker == "done:slow"
    assert engine.batches == [["slow"]] and service.metrics.expired == 1
    await service.stop()


async def test_a_failing_request_fails_alone() -> None:
    engine = FakeEngine()
    service = await started(engine, max_batch=8, batch_window_s=0.1)
    results = await asyncio.gather(
        *(service.request(f"u{i}", r) for i, r in enumerate(["ok1", "fail-me", "ok2"])),
        return_exceptions=True,
    )
    assert results[0] == "done:ok1" and results[2] == "done:ok2"
    assert isinstance(results[1], ValueError)
    assert service.metrics.failures == 1 and service.metrics.completed == 2
    await service.stop()


async def test_a_worker_that_fails_to_load_or_breaks_is_restarted() -> None:
    engine = FakeEngine(failing_loads=1)
    service = await started(engine, batch_window_s=0)
    assert await service.request("ann", "r1") == "done:r1"
    assert service.metrics.restarts == 1
    assert await service.request("bob", "break") == "done:break"  # requeued, served by the new worker
    assert service.metrics.restarts == 2
    await service.stop()


async def test_out_of_memory_splits_the_batch() -> None:
    engine = FakeEngine(max_batch_memory=2)
    service = await started(engine, max_batch=8, batch_window_s=0.1)
    results = await asyncio.gather(*(service.request(f"u{i}", f"r{i}") for i in range(5)))
    assert results == [f"done:r{i}" for i in range(5)]
    assert all(len(batch) <= 2 for batch in engine.batches) and service.metrics.splits >= 1
    await service.stop()


async def test_during_warm_up_the_user_hears_so_and_is_served_after() -> None:
    engine = FakeEngine()
    engine.load_gate.clear()
    service = await started(engine, batch_window_s=0)
    heard: list[ServiceProgress] = []
    pending = asyncio.create_task(service.request("ann", "r", progress=heard.append))
    await until(lambda: bool(heard))
    assert heard[0].stage == "warming up"
    engine.load_gate.set()
    assert await pending == "done:r"
    await service.stop()


async def test_metrics_are_exposed_as_stats_and_prometheus_text() -> None:
    engine = FakeEngine()
    service = await started(engine, batch_window_s=0)
    await service.request("ann", "r")
    stats = service.metrics.snapshot(service.queue_length())
    assert stats["completed"] == 1 and stats["queue_length"] == 0 and stats["service_p50_s"] is not None
    text = service.metrics.prometheus(service.queue_length())
    assert "pmg_queue_length 0" in text and "pmg_requests_completed_total 1" in text
    assert 'pmg_batch_size_total{size="1"} 1' in text
    await service.stop()


async def test_prometheus_text_is_served_on_a_local_port() -> None:
    from bot.metrics_http import serve_metrics

    engine = FakeEngine()
    service = await started(engine, batch_window_s=0)
    await service.request("ann", "r")
    server = await serve_metrics(service.prometheus, port=0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
    response = (await reader.read()).decode()
    assert response.startswith("HTTP/1.1 200 OK") and "pmg_requests_completed_total 1" in response
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /other HTTP/1.1\r\n\r\n")
    assert (await reader.read()).startswith(b"HTTP/1.1 404")
    server.close()
    await server.wait_closed()
    await service.stop()


async def test_after_stop_a_request_is_refused_at_once_and_the_running_batch_stops_between_steps() -> None:
    """Issue 12 item 5: a /sticker that reaches a stopped service must not wait on a ticket nothing serves."""
    engine = FakeEngine()
    engine.gate.clear()  # the batch runs until interrupted
    service = await started(engine, batch_window_s=0)
    running = asyncio.create_task(service.request("u0", "a"))
    await until(lambda: len(engine.batches) == 1)

    await service.stop()

    with pytest.raises(ServiceStopped, match="restarting"):
        await running
    with pytest.raises(ServiceStopped, match="ask again in a minute"):
        await asyncio.wait_for(service.request("u1", "late"), timeout=1)
    await until(lambda: engine.interrupted_runs == 1)
