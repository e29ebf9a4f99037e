"""The worker side of `PMG_BACKEND=ray`: the sticker engine as a Ray Serve deployment. Each replica loads
the profile's models once; `@serve.batch` gathers requests from many users (and front ends) into one
engine run; each request streams its progress (queued → drawing) and then its outcome."""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ray import serve

from bot.service import (
    BatchEngine,
    DeadlineExceeded,
    Failed,
    RequestCancelled,
    ServiceError,
    run_isolated,
)
from bot.service_metrics import ServiceMetrics
from bot.settings import Settings

log = logging.getLogger(__name__)

APP_NAME = "pmg-stickers"
BOARD_NAME = "pmg-stickers-board"  # the named actor replicas report their queue and checkpoint to
EngineFactory = Callable[[], BatchEngine[Any, Any]]


@dataclass(frozen=True)
class RemoteRequest:
    """One request as it crosses to a replica: the engine's request without a local path, the promoted
    checkpoint as (version, Ray object of its bytes), and the wall-clock deadline."""

    request: Any
    checkpoint: tuple[str, Any] | None = None
    deadline_at: float | None = None


@dataclass(frozen=True)
class Progress:
    stage: str  # "queued" | "drawing"


@dataclass(eq=False)
class _Job:
    remote: RemoteRequest
    started: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled: bool = False

    def late(self) -> bool:
        return self.remote.deadline_at is not None and time.time() > self.remote.deadline_at


def real_engine(settings: Settings) -> BatchEngine[Any, Any]:
    """The profile's stage 1 and stage 2, loaded once per replica."""
    from bot.cli_support import load_engines
    from bot.sticker_engine import StickerEngine

    return StickerEngine(lambda: load_engines(settings), settings.weight_sets)


class StickerDeployment:
    """One replica: its engine, the checkpoints it has received, and the batches it runs in turn."""

    def __init__(self, make_engine: EngineFactory, max_batch: int, batch_window_s: float) -> None:
        self.engine = make_engine()
        self.engine.load()
        batcher: Any = self._batch  # @serve.batch's setters, which its typing does not show
        limit = getattr(self.engine, "batch_limit", None)  # the StickerEngine's; stand-ins have none
        batcher.set_max_batch_size(limit(max_batch) if limit else max_batch)
        batcher.set_batch_wait_timeout_s(batch_window_s)
        self._checkpoints = Path(tempfile.mkdtemp(prefix="pmg-checkpoints-"))
        self._serving: str | None = None  # the checkpoint version the last batch used
        self._waiting = 0
        self._drawing = 0
        self._metrics = ServiceMetrics()  # splits and failures, in this replica's log
        self._id = serve.get_replica_context().replica_id.unique_id
        self._board = _board()
        self._report()

    def models(self) -> dict[str, str]:
        return dict(getattr(self.engine, "models", {}))

    async def draw(self, remote: RemoteRequest) -> AsyncIterator[Progress | Failed | Any]:
        """Progress, then the outcome (or Failed). A caller that goes away marks its job cancelled: a
        batch whose jobs are all cancelled stops between diffusion steps."""
        job = _Job(remote)
        self._waiting += 1
        self._report()
        run = asyncio.ensure_future(self._batch(job))
        try:
            yield Progress("queued")
            started = asyncio.ensure_future(job.started.wait())
            await asyncio.wait([run, started], return_when=asyncio.FIRST_COMPLETED)
            started.cancel()
            if job.started.is_set() and not run.done():
                yield Progress("drawing")
            yield await run
        finally:
            job.cancelled = True  # done, failed or abandoned: nobody waits for this run any more

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.05)
    async def _batch(self, jobs: list[_Job]) -> list[Any]:
        outcomes: list[Any] = [None] * len(jobs)
        wanted = []
        for i, job in enumerate(jobs):
            if job.cancelled:
                outcomes[i] = Failed(RequestCancelled())
            elif job.late():
                outcomes[i] = Failed(DeadlineExceeded())
            else:
                wanted.append(i)
        self._waiting -= len(jobs)
        self._drawing = len(wanted)
        self._report()
        try:
            requests = [await self._localized(jobs[i].remote) for i in wanted]
            for i in wanted:
                jobs[i].started.set()

            def interrupted() -> bool:  # from the engine thread, between diffusion steps
                return all(jobs[i].cancelled or jobs[i].late() for i in wanted)

            results = await asyncio.to_thread(run_isolated, self.engine, requests, interrupted, self._metrics)
            for i, result in zip(wanted, results, strict=True):
                outcomes[i] = portable(result)
        finally:
            self._drawing = 0
            self._report()
        return outcomes

    async def _localized(self, remote: RemoteRequest) -> Any:
        """The engine's request with the checkpoint as a file of this host: its bytes fetched from the
        object store once per version, whichever front sent it."""
        if remote.checkpoint is None:
            return remote.request
        version, blob = remote.checkpoint
        path = self._checkpoints / f"{version}.ckpt"
        if not path.exists():
            data = await blob
            partial = path.with_suffix(".part")
            partial.write_bytes(data)
            partial.rename(path)  # a half-written file never looks like a checkpoint
            log.info("checkpoint %s received (%d bytes)", version, len(data))
        self._serving = max(self._serving or version, version)
        return replace(remote.request, checkpoint=(version, path))

    def _report(self) -> None:
        """Tell the board this replica's queue and checkpoint (fire and forget: never slows a batch)."""
        if self._board is not None:
            self._board.report.remote(self._id, self._waiting, self._drawing, self._serving, peak_memory_mb())


def peak_memory_mb() -> int:
    """This process's peak resident memory: VmHWM where Linux has it (ru_maxrss would count the process
    it was forked from), else ru_maxrss."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        import resource
        import sys

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # bytes on macOS, KiB elsewhere
        return peak // (1024 * 1024) if sys.platform == "darwin" else peak // 1024
    kib = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(kib) // 1024


def portable(outcome: Any) -> Any:
    """What a replica sends back, unpickled by a front that loads no model code: no tensors (the soft
    embeddings the generator was given), and an engine error as a ServiceError whose id is in this
    replica's log (its own type may live in a module that imports torch)."""
    if isinstance(outcome, Failed):
        if isinstance(outcome.error, ServiceError):
            return outcome
        error_id = uuid.uuid4().hex[:8]
        log.error("sticker request %s failed: %r", error_id, outcome.error)
        return Failed(
            ServiceError(
                f"something broke while drawing your sticker (error id {error_id}); please ask again"
            )
        )
    from bot.sticker_engine import EngineOutcome

    if isinstance(outcome, EngineOutcome) and outcome.result.request.soft_embeddings is not None:
        outcome.result.request = replace(outcome.result.request, soft_embeddings=None)
    return outcome


def _board() -> Any:
    import ray

    try:
        return ray.get_actor(BOARD_NAME, namespace="serve")
    except ValueError:
        return None


class ReplicaBoard:
    """What each replica last reported: queued and drawing requests, the checkpoint it serves, and the
    most memory its process has held."""

    def __init__(self) -> None:
        self.replicas: dict[str, dict[str, object]] = {}

    def report(self, replica: str, waiting: int, drawing: int, checkpoint: str | None, peak_mb: int) -> None:
        self.replicas[replica] = {
            "queued": waiting,
            "drawing": drawing,
            "checkpoint": checkpoint,
            "peak_memory_mb": peak_mb,
        }

    def read(self) -> dict[str, dict[str, object]]:
        return self.replicas


def replica_settings(settings: Settings) -> Settings:
    """The settings a replica needs, without a secret: platform tokens and the database URL (it may hold
    a password) never travel to the cluster."""
    return settings.model_copy(
        update={"telegram_token": None, "discord_token": None, "telegram_webhook_secret": None, "db_url": ""}
    )


def deployment_options(settings: Settings) -> dict[str, Any]:
    """Replicas (fixed, or autoscaled on ongoing requests), their GPUs, and the queue bound."""
    gpus = settings.ray_gpus_per_replica
    if gpus is None:
        gpus = 1.0 if settings.profile == "sd15" else 0.0
    options: dict[str, Any] = {
        "ray_actor_options": {"num_gpus": gpus, "num_cpus": settings.ray_cpus_per_replica},
        "max_queued_requests": settings.queue_max,
        # a replica takes the next batch's requests while one runs, so @serve.batch can fill it
        "max_ongoing_requests": 2 * settings.max_batch,
    }
    if settings.ray_replicas is not None:
        options["num_replicas"] = settings.ray_replicas
    else:
        options["autoscaling_config"] = {
            "min_replicas": settings.ray_min_replicas,
            "max_replicas": settings.ray_max_replicas,
            "target_ongoing_requests": settings.max_batch,
        }
    return options


def sticker_application(settings: Settings, make_engine: EngineFactory | None = None) -> serve.Application:
    """The Serve application `pmg serve` deploys; tests pass a stand-in `make_engine`."""
    from functools import partial

    deployment = serve.deployment(name="StickerDeployment", **deployment_options(settings))(StickerDeployment)
    return deployment.bind(
        make_engine or partial(real_engine, replica_settings(settings)),
        settings.max_batch,
        settings.batch_window_ms / 1000,
    )


def deploy(settings: Settings, make_engine: EngineFactory | None = None) -> serve.handle.DeploymentHandle:
    """Deploy (or update) the application on the connected cluster and wait until it runs."""
    import ray

    serve.start(proxy_location="Disabled")  # fronts use deployment handles: no HTTP proxy to run
    ray.remote(ReplicaBoard).options(
        name=BOARD_NAME, namespace="serve", lifetime="detached", get_if_exists=True, num_cpus=0
    ).remote()
    return serve.run(
        sticker_application(settings, make_engine), name=settings.ray_app, route_prefix=None, blocking=False
    )


def cluster_status(app: str) -> dict[str, object]:
    """The application's state, its replicas by state, and each live replica's queue and checkpoint."""
    import ray

    application = serve.status().applications.get(app)
    if application is None:
        return {"application": "not deployed (pmg serve deploys it)"}
    deployment = application.deployments.get("StickerDeployment")
    states = {str(state): n for state, n in (deployment.replica_states if deployment else {}).items()}
    board = _board()
    reports: dict[str, dict[str, object]] = ray.get(board.read.remote(), timeout=5) if board else {}
    live = {a["name"] for a in ray.util.list_named_actors(all_namespaces=True)}
    return {
        "application": str(getattr(application.status, "value", application.status)),  # "RUNNING"
        "replicas": states,
        "replica_queues": {
            replica: report
            for replica, report in reports.items()
            if f"SERVE_REPLICA::{app}#StickerDeployment#{replica}" in live  # Serve's replica actor name
        },
    }
