"""The sticker service: an asyncio front with a bounded queue, and one model worker thread that runs
requests in micro-batches. It coalesces repeats, drops cancelled and late requests, isolates failures,
and restarts a broken worker. Platform adapters and the CLI reach the engine only through it."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar, cast

from bot.service_metrics import ServiceMetrics

log = logging.getLogger(__name__)

Request = TypeVar("Request")
Result = TypeVar("Result")
RequestIn = TypeVar("RequestIn", contravariant=True)
ResultOut = TypeVar("ResultOut", covariant=True)


class ServiceError(Exception):
    """A request the service did not run; the message is fit for the user."""


class ServiceBusy(ServiceError):
    def __init__(self, retry_after_s: float) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(f"busy right now, try again in ~{math.ceil(retry_after_s)} s")


class RequestCancelled(ServiceError):
    def __init__(self) -> None:
        super().__init__("cancelled")


class DeadlineExceeded(ServiceError):
    def __init__(self) -> None:
        super().__init__("took too long and was dropped; please ask again")


class ServiceStopped(ServiceError):
    def __init__(self) -> None:
        super().__init__("I'm restarting; please ask again in a minute")


class BatchTooLarge(Exception):
    """The engine ran out of (GPU) memory on this batch: the service splits it and retries."""


class EngineBroken(Exception):
    """The engine's state is unusable (a lost device, a crashed worker): the service reloads it."""


class BatchEngine(Protocol[Request, Result]):
    """What the worker thread runs: a slow load, then batches of requests (one result per request)."""

    def load(self) -> None: ...

    def run(self, requests: list[Request], interrupted: Callable[[], bool]) -> list[Result]: ...


@dataclass(frozen=True)
class Failed:
    """The engine's error for one request, carried back as data so the rest of its batch is unharmed."""

    error: BaseException


def run_isolated(
    engine: BatchEngine[Request, Result],
    requests: list[Request],
    interrupted: Callable[[], bool],
    metrics: ServiceMetrics,
) -> list[Result | Failed]:
    """One engine run, in the model worker: a batch too large for memory is split in halves, and on any
    other failure each request runs alone, so one bad request fails only itself. EngineBroken passes
    through: the whole batch waits for a reloaded engine."""
    if not requests:
        return []
    try:
        return list(engine.run(requests, interrupted))
    except EngineBroken:
        raise
    except BatchTooLarge:
        metrics.splits += 1
        if len(requests) == 1:
            return [Failed(ServiceError("this sticker needs more memory than the server has"))]
        half = len(requests) // 2
        return run_isolated(engine, requests[:half], interrupted, metrics) + run_isolated(
            engine, requests[half:], interrupted, metrics
        )
    except Exception as error:
        if len(requests) > 1:
            log.warning("a batch of %d failed (%s); running each alone", len(requests), error)
            return [run_isolated(engine, [r], interrupted, metrics)[0] for r in requests]
        log.exception("sticker request failed")
        metrics.failures += 1
        return [Failed(error)]


ProgressCallback = Callable[["ServiceProgress"], None]


class StickerBackend(Protocol[RequestIn, ResultOut]):
    """The seam the use cases call: this in-process service by default; a distributed backend (Ray Serve,
    a Redis job queue) implements the same three methods to serve N workers on several hosts."""

    async def request(
        self,
        key: Hashable,
        request: RequestIn,
        *,
        progress: ProgressCallback | None = None,
        deadline_s: float | None = None,
        batch_key: Hashable = None,
    ) -> ResultOut: ...

    def cancel(self, key: Hashable) -> bool: ...

    async def stats(self) -> dict[str, object]: ...


@dataclass(frozen=True)
class ServiceProgress:
    """What the waiting user is told: warming up, their place in the queue, or that it is running."""

    stage: str  # "warming up" | "queued" | "running"
    position: int | None = None  # 1 = next
    eta_s: float | None = None


@dataclass(eq=False)
class _Ticket(Generic[Request]):
    key: Hashable
    request: Request
    batch_key: Hashable
    future: asyncio.Future[Any]
    enqueued: float
    deadline: float | None
    listeners: list[ProgressCallback] = field(default_factory=list)
    cancelled: bool = False

    def tell(self, progress: ServiceProgress) -> None:
        for listener in self.listeners:
            try:
                listener(progress)
            except Exception:  # a broken progress message must not break the request
                log.exception("progress callback failed")


class StickerService(Generic[Request, Result]):
    """request() → the result of one engine run, batched with whatever else waits (same batch key)."""

    def __init__(
        self,
        engine: BatchEngine[Request, Result],
        *,
        queue_max: int = 32,
        batch_window_s: float = 0.05,
        max_batch: int = 8,
        restart_delay_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.queue_max = queue_max
        self.batch_window_s = batch_window_s
        self.max_batch = max_batch
        self.restart_delay_s = restart_delay_s
        self.clock = clock
        self.metrics = ServiceMetrics()
        self.ready = asyncio.Event()
        self._queue: deque[_Ticket[Request]] = deque()
        self._pending: dict[Hashable, _Ticket[Request]] = {}
        self._arrived = asyncio.Event()
        self._executor = self._new_worker()
        self._supervisor: asyncio.Task[None] | None = None
        self._stopped = False

    # --- the front ------------------------------------------------------------------------

    async def start(self) -> None:
        """Start loading the models in the worker and serving; returns at once (see `ready`)."""
        self._supervisor = asyncio.create_task(self._supervise(), name="pmg-sticker-supervisor")

    async def stop(self) -> None:
        """Refuse new requests, tell every waiting one to ask again, and let a running batch stop
        between diffusion steps (nobody wants it any more)."""
        self._stopped = True
        for ticket in self._pending.values():
            ticket.cancelled = True  # what the running batch's `interrupted` reads
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.gather(self._supervisor, return_exceptions=True)
        for ticket in list(self._pending.values()):  # queued and running alike
            if not ticket.future.done():
                ticket.future.set_exception(ServiceStopped())
                ticket.future.exception()  # retrieved: a caller that left must not cause a warning
        self._queue.clear()
        self._pending.clear()
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def request(
        self,
        key: Hashable,
        request: Request,
        *,
        progress: ProgressCallback | None = None,
        deadline_s: float | None = None,
        batch_key: Hashable = None,
    ) -> Result:
        """Queue `request` for user `key` and wait for its result. A user with a request pending gets
        that one's result (coalescing). Raises ServiceBusy at once when the queue is full, and
        RequestCancelled / DeadlineExceeded / ServiceStopped or the engine's own error otherwise."""
        if self._stopped:  # nothing would ever serve it: say so now, never wait
            raise ServiceStopped()
        ticket = self._pending.get(key)
        if ticket is not None:
            self.metrics.coalesced += 1
            if progress:
                ticket.listeners.append(progress)
            return await self._result(ticket)
        if len(self._queue) >= self.queue_max:
            self.metrics.refused += 1
            raise ServiceBusy(self.retry_after_s())
        now = self.clock()
        ticket = _Ticket(
            key,
            request,
            batch_key,
            asyncio.get_running_loop().create_future(),
            now,
            now + deadline_s if deadline_s is not None else None,
            [progress] if progress else [],
        )
        self._queue.append(ticket)
        self._pending[key] = ticket
        self._arrived.set()
        if self.ready.is_set():
            ticket.tell(ServiceProgress("queued", len(self._queue), self.eta_s(len(self._queue))))
        else:
            ticket.tell(ServiceProgress("warming up", len(self._queue)))
        return await self._result(ticket)

    def cancel(self, key: Hashable) -> bool:
        """Cancel the user's pending request: dropped if queued, discarded (and the run interrupted when
        nothing else in its batch is wanted) if running. False when there is none."""
        ticket = self._pending.get(key)
        if ticket is None:
            return False
        ticket.cancelled = True
        if ticket in self._queue:
            self._queue.remove(ticket)
            self._finish(ticket, error=RequestCancelled())
        return True

    def queue_length(self) -> int:
        return len(self._queue)

    async def stats(self) -> dict[str, object]:
        """Queue, latency percentiles, batch sizes and failures: what `/stats` shows."""
        return {"ready": self.ready.is_set(), **self.metrics.snapshot(len(self._queue))}

    def prometheus(self) -> str:
        return self.metrics.prometheus(len(self._queue))

    def retry_after_s(self) -> float:
        """When a refused user may find room: the batches ahead times the recent seconds per batch."""
        return max(1.0, math.ceil((len(self._queue) + 1) / self.max_batch) * self.metrics.batch_seconds())

    def eta_s(self, position: int) -> float:
        return math.ceil(position / self.max_batch) * self.metrics.batch_seconds()

    async def _result(self, ticket: _Ticket[Request]) -> Result:
        # shield: a caller that goes away does not cancel the run others (a coalesced repeat) await.
        return cast(Result, await asyncio.shield(ticket.future))

    # --- the worker -----------------------------------------------------------------------

    def _new_worker(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="pmg-model-worker")

    async def _supervise(self) -> None:
        """Load, then serve; a worker that fails is logged, replaced and reloaded, never silently gone."""
        while True:
            try:
                await self._in_worker(self.engine.load)
                self.ready.set()
                log.info("sticker worker ready")
                await self._serve()
            except asyncio.CancelledError:
                raise
            except Exception:
                self.ready.clear()
                self.metrics.restarts += 1
                log.exception("sticker worker failed; restarting in %.1f s", self.restart_delay_s)
                self._executor.shutdown(wait=False, cancel_futures=True)
                self._executor = self._new_worker()
                await asyncio.sleep(self.restart_delay_s)

    async def _in_worker(self, function: Callable[..., object], *args: object) -> object:
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    async def _serve(self) -> None:
        while True:
            if not self._queue:
                self._arrived.clear()
                await self._arrived.wait()
            batch = await self._next_batch()
            if batch:
                await self._run(batch)

    async def _next_batch(self) -> list[_Ticket[Request]]:
        """The oldest request and, after the batch window, the requests behind it with its batch key."""
        first = self._queue[0]
        wait = first.enqueued + self.batch_window_s - self.clock()
        if wait > 0 and len(self._queue) < self.max_batch:
            await asyncio.sleep(wait)
        if not self._queue:
            return []
        key = self._queue[0].batch_key
        batch = [t for t in self._queue if t.batch_key == key][: self.max_batch]
        for ticket in batch:
            self._queue.remove(ticket)
        return [t for t in batch if self._still_wanted(t)]

    def _still_wanted(self, ticket: _Ticket[Request]) -> bool:
        if ticket.cancelled:
            self._finish(ticket, error=RequestCancelled())
            return False
        if ticket.deadline is not None and self.clock() > ticket.deadline:
            self.metrics.expired += 1
            self._finish(ticket, error=DeadlineExceeded())
            return False
        return True

    async def _run(self, batch: list[_Ticket[Request]]) -> None:
        """One engine run (see `run_isolated`); a broken engine puts the batch back for the next one."""
        started = self.clock()
        for position, ticket in enumerate(batch, start=1):
            self.metrics.waits.append(started - ticket.enqueued)
            ticket.tell(ServiceProgress("running", position))

        def interrupted() -> bool:  # from the worker thread, between diffusion steps
            return all(t.cancelled or (t.deadline is not None and self.clock() > t.deadline) for t in batch)

        try:
            outcomes = cast(
                "list[object]",
                await self._in_worker(
                    run_isolated, self.engine, [t.request for t in batch], interrupted, self.metrics
                ),
            )
        except EngineBroken:
            for ticket in reversed(batch):  # back to the front of the queue, for the restarted worker
                self._queue.appendleft(ticket)
            raise
        self.metrics.record_batch(len(batch), self.clock() - started)
        for ticket, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, Failed):
                self._finish(ticket, error=outcome.error)
            else:
                self._finish(ticket, result=outcome)

    def _finish(
        self, ticket: _Ticket[Request], *, result: object = None, error: BaseException | None = None
    ) -> None:
        if self._pending.get(ticket.key) is ticket:
            del self._pending[ticket.key]
        if ticket.future.done():
            return
        if ticket.cancelled and error is None:
            error = RequestCancelled()  # it ran, but nobody wants it any more
        if isinstance(error, RequestCancelled):
            self.metrics.cancelled += 1
        if error is not None:
            ticket.future.set_exception(error)
            ticket.future.exception()  # retrieved: nobody awaiting is not an error worth a warning
        else:
            self.metrics.completed += 1
            self.metrics.services.append(self.clock() - ticket.enqueued)
            ticket.future.set_result(result)
