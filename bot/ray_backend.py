"""The front side of `PMG_BACKEND=ray`: a StickerBackend over the Serve deployment handle. This process
loads no model. It keeps the per-user rules (one pending request, coalescing), deadlines and
cancellation; words a refusal as busy; retries once a request whose replica died; and sends each
promoted checkpoint's bytes through Ray once per version."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Hashable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bot.service import (
    DeadlineExceeded,
    Failed,
    ProgressCallback,
    RequestCancelled,
    ServiceBusy,
    ServiceError,
    ServiceProgress,
    ServiceStopped,
)
from bot.service_metrics import ServiceMetrics, percentile
from bot.settings import Settings

log = logging.getLogger(__name__)

INSTALL_HINT = "PMG_BACKEND=ray needs Ray Serve: pip install 'pmg-stickers[ray]' (scripts/setup installs it)"
STAGES = {"queued": "queued", "drawing": "running"}  # the replica's words → ServiceProgress stages


class BackendUnavailable(Exception):
    """The Ray cluster or the sticker application cannot be reached; the message says what to do."""


def join_cluster(settings: Settings) -> None:
    """Connect this process to the Ray cluster at PMG_RAY_ADDRESS (once)."""
    try:
        import ray
    except ImportError:
        raise BackendUnavailable(INSTALL_HINT) from None
    if ray.is_initialized():
        return
    try:
        ray.init(address=settings.ray_address, logging_level=logging.WARNING, log_to_driver=False)
    except (ConnectionError, RuntimeError) as error:
        if _refused_login(error):
            raise BackendUnavailable(
                f"the Ray cluster at PMG_RAY_ADDRESS={settings.ray_address} wants its token: set "
                "RAY_AUTH_MODE=token and copy ~/.ray/auth_token from the head (README: Scaling out)"
            ) from None
        raise BackendUnavailable(
            f"no Ray cluster at PMG_RAY_ADDRESS={settings.ray_address} ({error}); start one with "
            "`ray start --head` (README: Scaling out)"
        ) from None


def _refused_login(error: BaseException | None) -> bool:
    """Ray reports the cluster's AuthenticationError inside the text of the errors that wrap it."""
    while error is not None:
        if "AuthenticationError" in f"{type(error).__name__} {error}":
            return True
        error = error.__cause__ or error.__context__
    return False


@dataclass(eq=False)
class _Call:
    listeners: list[ProgressCallback]
    task: asyncio.Task[Any] | None = None
    stopping: bool = False
    started: float = field(default_factory=time.monotonic)

    def tell(self, progress: ServiceProgress) -> None:
        for listener in self.listeners:
            try:
                listener(progress)
            except Exception:  # a broken progress message must not break the request
                log.exception("progress callback failed")


class RayStickerBackend:
    """request() → the outcome from a replica of the Serve application, batched there with other users'."""

    def __init__(self, handle: Any, settings: Settings) -> None:
        from ray.exceptions import ActorUnavailableError, RayActorError
        from ray.serve.exceptions import BackPressureError, ReplicaUnavailableError

        self._handle = handle
        self._stream = handle.options(stream=True)
        self.settings = settings
        self.metrics = ServiceMetrics()
        self._pending: dict[Hashable, _Call] = {}
        self._checkpoint: tuple[str, Any] | None = None  # (version, Ray object of its bytes)
        self._checkpoint_lock = asyncio.Lock()
        self._busy = BackPressureError
        self._lost = (RayActorError, ActorUnavailableError, ReplicaUnavailableError)

    @classmethod
    def connect(cls, settings: Settings) -> RayStickerBackend:
        """Join the cluster at PMG_RAY_ADDRESS and find the application `pmg serve` deployed."""
        join_cluster(settings)
        from ray import serve

        try:
            handle = serve.get_app_handle(settings.ray_app)
        except Exception:  # Serve raises a plain RayServeException naming no cause worth more
            raise BackendUnavailable(
                f"the Ray cluster has no `{settings.ray_app}` application: deploy it with `pmg serve`"
            ) from None
        return cls(handle, settings)

    async def models(self) -> dict[str, str]:
        """What the replicas draw with (LLM, generator, scorer, safety), for /about."""
        return dict(await self._handle.models.remote())

    # --- StickerBackend -----------------------------------------------------------------------

    async def request(
        self,
        key: Hashable,
        request: Any,
        *,
        progress: ProgressCallback | None = None,
        deadline_s: float | None = None,
        batch_key: Hashable = None,  # the replica batches every request alike
    ) -> Any:
        """The outcome for user `key`'s request; a user with one pending gets that one's (coalescing).
        Raises ServiceBusy when the deployment refuses, RequestCancelled, DeadlineExceeded,
        ServiceStopped, a ServiceError with an id when it failed twice, or the engine's own error."""
        call = self._pending.get(key)
        if call is not None:
            self.metrics.coalesced += 1
            if progress:
                call.listeners.append(progress)
        else:
            call = _Call([progress] if progress else [])
            call.task = asyncio.create_task(self._run(call, request, deadline_s))
            call.task.add_done_callback(lambda _: self._forget(key, call))
            self._pending[key] = call
        assert call.task is not None
        try:
            # shield: a caller that goes away does not cancel the run others (a coalesced repeat) await.
            return await asyncio.shield(call.task)
        except asyncio.CancelledError:
            caller = asyncio.current_task()
            if not call.task.cancelled() or (caller is not None and caller.cancelling()):
                raise  # this caller itself was cancelled
            raise ServiceStopped() if call.stopping else RequestCancelled() from None

    def cancel(self, key: Hashable) -> bool:
        call = self._pending.get(key)
        if call is None or call.task is None:
            return False
        self.metrics.cancelled += 1
        call.task.cancel()  # the response is cancelled too: the replica marks the job cancelled
        return True

    async def stats(self) -> dict[str, object]:
        from bot.ray_deployment import cluster_status

        try:  # in a thread: the controller and the board answer over the network, in seconds at worst
            cluster = await asyncio.to_thread(cluster_status, self.settings.ray_app)
        except Exception as error:  # /stats must answer even when the controller does not
            cluster = {"cluster": f"unreachable ({type(error).__name__})"}
        return {"backend": "ray", **cluster, **self.metrics.snapshot(len(self._pending))}

    def prometheus(self) -> str:
        return self.metrics.prometheus(len(self._pending))

    async def stop(self) -> None:
        """Tell every waiting user to ask again; their replicas stop drawing for them."""
        calls = list(self._pending.values())
        for call in calls:
            call.stopping = True
            if call.task is not None:
                call.task.cancel()
        await asyncio.gather(*(c.task for c in calls if c.task is not None), return_exceptions=True)

    # --- one request --------------------------------------------------------------------------

    def _forget(self, key: Hashable, call: _Call) -> None:
        if self._pending.get(key) is call:
            del self._pending[key]

    async def _run(self, call: _Call, request: Any, deadline_s: float | None) -> Any:
        from bot.ray_deployment import RemoteRequest

        try:
            async with asyncio.timeout(deadline_s):
                remote = RemoteRequest(
                    replace(request, checkpoint=None),
                    await self._checkpoint_ref(request.checkpoint),
                    time.time() + deadline_s if deadline_s is not None else None,
                )
                outcome = await self._draw_retrying(call, remote)
        except TimeoutError:
            self.metrics.expired += 1
            raise DeadlineExceeded() from None
        self.metrics.completed += 1
        self.metrics.services.append(time.monotonic() - call.started)
        return outcome

    async def _draw_retrying(self, call: _Call, remote: Any) -> Any:
        """A replica that dies mid-batch is restarted by Ray; its requests are sent once more."""
        try:
            return await self._draw(call, remote)
        except self._lost as error:
            log.warning("a sticker replica was lost (%s); sending the request again", type(error).__name__)
        try:
            return await self._draw(call, remote)
        except self._lost as error:
            self.metrics.failures += 1
            error_id = uuid.uuid4().hex[:8]
            log.error("sticker request %s lost its replica twice: %s", error_id, error)
            raise ServiceError(
                f"something broke while drawing your sticker (error id {error_id}); please ask again"
            ) from None

    async def _draw(self, call: _Call, remote: Any) -> Any:
        from bot.ray_deployment import Progress

        response = self._stream.draw.remote(remote)
        try:
            async for item in response:
                if isinstance(item, Progress):
                    call.tell(ServiceProgress(STAGES[item.stage]))
                elif isinstance(item, Failed):
                    raise item.error
                else:
                    return item
        except self._busy:
            self.metrics.refused += 1
            raise ServiceBusy(max(1.0, percentile(self.metrics.services, 0.5) or 0.0)) from None
        except asyncio.CancelledError:  # cancel() or the deadline: the replica marks the job cancelled
            with contextlib.suppress(Exception):  # best effort: it may have ended meanwhile
                response.cancel()
            raise
        raise ServiceError("the sticker worker ended without an answer; please ask again")

    async def _checkpoint_ref(self, checkpoint: tuple[str, Path] | None) -> tuple[str, Any] | None:
        """The promoted checkpoint as a Ray object: its bytes are put once per version, and each
        replica fetches them once, without a shared disk."""
        if checkpoint is None:
            return None
        import ray

        version, path = checkpoint
        async with self._checkpoint_lock:
            if self._checkpoint is None or self._checkpoint[0] != version:
                data = await asyncio.to_thread(path.read_bytes)
                self._checkpoint = (version, ray.put(data))
                log.info("checkpoint %s sent to the cluster (%d bytes)", version, len(data))
        return self._checkpoint
