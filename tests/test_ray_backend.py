"""PMG_BACKEND=ray on a real local Ray instance (2 CPUs): the sticker deployment with a stand-in engine the
test holds and releases (tests/ray_stand_in.py), reached through RayStickerBackend as the use cases
reach it. Ray starts once for the session; the applications deploy once per module."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray
import ray.cloudpickle
import ray_stand_in
from ray import serve
from ray_stand_in import StandInRequest
from typer.testing import CliRunner

from bot.cli import app
from bot.ray_backend import BackendUnavailable, RayStickerBackend
from bot.ray_deployment import cluster_status, deploy
from bot.service import DeadlineExceeded, RequestCancelled, ServiceBusy, ServiceProgress
from bot.settings import Settings
from chat_drivers import USERS
from telegram_fake import FakeBotApi, text_message

# The replicas unpickle the stand-in by value: they need not import the tests folder.
ray.cloudpickle.register_pickle_by_value(ray_stand_in)


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[str]:
    """One local Ray instance for the whole session; yields its address for other processes."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        serve.shutdown()
        ray.shutdown()


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gate")


def stand_in_settings(app: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "ray_app": app,
        "ray_replicas": 2,
        "ray_cpus_per_replica": 0,  # the replicas wait on the gate: no CPU to reserve
        "max_batch": 8,
        "batch_window_ms": 200,
        "queue_max": 64,
    }
    return Settings(**{**values, **overrides})


@pytest.fixture(scope="module")
def two_replicas(ray_cluster: str, gate: Path) -> Settings:
    settings = stand_in_settings("stand-in")
    deploy(settings, functools.partial(ray_stand_in.stand_in_engine, gate))
    return settings


@pytest.fixture
def backend(two_replicas: Settings, gate: Path) -> Iterator[RayStickerBackend]:
    cleared(gate)
    yield RayStickerBackend.connect(two_replicas)
    (gate / "release").touch()  # nothing a test left held may block the next


def cleared(gate: Path) -> None:
    for note in gate.iterdir():
        note.unlink()


def first_run(gate: Path) -> Path:
    return min(gate.glob("started-*"), key=lambda p: int(p.name.split("-")[2]))


def released(gate: Path) -> None:
    (gate / "release").touch()


async def until(condition: Any, within_s: float = 20.0) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.05)


def runs_started(gate: Path) -> list[str]:
    """What each engine run began with, oldest first: the replica actor's name, then the requests."""
    return [p.read_text() for p in sorted(gate.glob("started-*"), key=lambda p: int(p.name.split("-")[2]))]


async def test_requests_from_16_users_are_batched_across_replicas(
    backend: RayStickerBackend, gate: Path
) -> None:
    released(gate)
    progress: list[ServiceProgress] = []
    outcomes = await asyncio.gather(
        *(
            backend.request(f"user-{i}", StandInRequest(f"hi {i}"), progress=progress.append)
            for i in range(16)
        )
    )
    assert [o.text for o in outcomes] == [f"hi {i}" for i in range(16)]
    assert max(len(o.batch) for o in outcomes) > 1
    assert {p.stage for p in progress} >= {"queued"}
    assert (await backend.stats())["completed"] == 16


async def test_a_second_request_of_a_user_gets_the_pending_ones_result(
    backend: RayStickerBackend, gate: Path
) -> None:
    first = asyncio.create_task(backend.request("ann", StandInRequest("first")))
    await until(lambda: runs_started(gate))
    second = asyncio.create_task(backend.request("ann", StandInRequest("second")))
    released(gate)
    assert (await first).text == (await second).text == "first"
    assert (await backend.stats())["coalesced"] == 1


async def test_the_user_sees_queued_then_drawing(backend: RayStickerBackend, gate: Path) -> None:
    progress: list[str] = []
    task = asyncio.create_task(
        backend.request("ann", StandInRequest("hi"), progress=lambda p: progress.append(p.stage))
    )
    await until(lambda: progress == ["queued", "running"])
    released(gate)
    assert (await task).text == "hi"


async def test_a_cancelled_request_stops_its_batch_between_steps(
    backend: RayStickerBackend, gate: Path
) -> None:
    task = asyncio.create_task(backend.request("ann", StandInRequest("hi")))
    await until(lambda: runs_started(gate))
    assert backend.cancel("ann")
    with pytest.raises(RequestCancelled):
        await task
    await until(lambda: list(gate.glob("interrupted-*")))  # the replica stopped drawing for nobody
    assert not backend.cancel("ann")


async def test_a_request_cancelled_before_its_batch_never_runs(
    backend: RayStickerBackend, gate: Path
) -> None:
    task = asyncio.create_task(backend.request("ann", StandInRequest("never drawn")))
    await asyncio.sleep(0)  # the request is on its way, inside the batch window
    assert backend.cancel("ann")
    with pytest.raises(RequestCancelled):
        await task
    released(gate)
    assert (await backend.request("bob", StandInRequest("drawn"))).text == "drawn"
    assert "never drawn" not in "\n".join(runs_started(gate))


async def test_a_late_request_is_dropped_with_the_deadline_error(
    backend: RayStickerBackend, gate: Path
) -> None:
    with pytest.raises(DeadlineExceeded):
        await backend.request("ann", StandInRequest("slow"), deadline_s=1.0)
    await until(lambda: list(gate.glob("interrupted-*")))  # and the replica stopped drawing it
    assert (await backend.stats())["expired"] == 1


async def test_a_replica_killed_mid_batch_is_restarted_and_its_request_retried(
    backend: RayStickerBackend, two_replicas: Settings, gate: Path
) -> None:
    task = asyncio.create_task(backend.request("ann", StandInRequest("survives")))
    await until(lambda: runs_started(gate))
    killed_pid = int(first_run(gate).name.split("-")[1])
    killed_replica = runs_started(gate)[0].splitlines()[0]
    ray.kill(ray.get_actor(killed_replica, namespace="serve"), no_restart=False)
    await until(lambda: len(runs_started(gate)) == 2)  # sent again, to a live replica
    released(gate)
    outcome = await task
    assert outcome.text == "survives" and outcome.pid != killed_pid
    await until(lambda: cluster_status(two_replicas.ray_app)["replicas"] == {"RUNNING": 2}, within_s=60)


async def test_the_promoted_checkpoint_reaches_every_replica_without_a_shared_disk(
    backend: RayStickerBackend, gate: Path, tmp_path: Path
) -> None:
    released(gate)
    checkpoint = tmp_path / "v2.safetensors"
    checkpoint.write_text("checkpoint bytes v2")
    outcomes: list[Any] = []
    give_up = time.monotonic() + 30  # a replica restarted by an earlier test joins the router in seconds
    while time.monotonic() < give_up:  # until the router has used both replicas
        outcomes += await asyncio.gather(
            *(
                backend.request(f"user-{i}", StandInRequest(f"hi {i}", ("20261130-v2", checkpoint)))
                for i in range(16)
            )
        )
        if len({o.pid for o in outcomes}) == 2:
            break
    checkpoint.unlink()  # the replicas hold their own copies from here on
    assert {o.checkpoint for o in outcomes} == {"checkpoint bytes v2"}
    assert len({o.pid for o in outcomes}) == 2, "both replicas served"
    later = await backend.request("ann", StandInRequest("later", ("20261130-v2", checkpoint)))
    assert later.checkpoint == "checkpoint bytes v2"
    queues = cluster_status(backend.settings.ray_app)["replica_queues"]
    assert {q["checkpoint"] for q in queues.values()} == {"20261130-v2"}  # type: ignore[union-attr]


async def test_stats_show_the_backend_replicas_and_their_queues(backend: RayStickerBackend) -> None:
    stats = await backend.stats()
    assert stats["backend"] == "ray"
    assert stats["replicas"] == {"RUNNING": 2}
    queues: dict[str, dict[str, Any]] = stats["replica_queues"]  # type: ignore[assignment]
    assert len(queues) == 2
    assert all(q["peak_memory_mb"] > 50 for q in queues.values())  # a Python process with Ray in it


async def test_a_full_deployment_answers_busy(ray_cluster: str, gate: Path) -> None:
    settings = stand_in_settings("one-slot", ray_replicas=1, max_batch=1, queue_max=1)
    deploy(settings, functools.partial(ray_stand_in.stand_in_engine, gate))
    backend = RayStickerBackend.connect(settings)
    cleared(gate)
    tasks = [asyncio.create_task(backend.request(f"user-{i}", StandInRequest(f"hi {i}"))) for i in range(6)]
    await until(lambda: any(t.done() for t in tasks))
    released(gate)
    results = await asyncio.gather(*tasks, return_exceptions=True)
    busy = [r for r in results if isinstance(r, ServiceBusy)]
    assert busy and "busy right now, try again in ~" in str(busy[0]), results
    assert [r for r in results if not isinstance(r, Exception)], "the ones it took were drawn"
    serve.delete(settings.ray_app)


def test_an_application_not_deployed_is_one_clear_line(ray_cluster: str) -> None:
    with pytest.raises(BackendUnavailable, match="pmg serve"):
        RayStickerBackend.connect(stand_in_settings("nowhere"))


# The front process, run as `pmg` is, reporting at exit its peak memory and which model libraries it imported.
FRONT = """
import json, sys
_, report_file, libraries, *args = sys.argv
def report():
    # VmHWM, not ru_maxrss: that one keeps the peak of the forked parent (pytest, with its models).
    status = dict(line.split(":", 1) for line in open("/proc/self/status"))
    with open(report_file, "w") as handle:
        json.dump({"rss_mb": int(status["VmHWM"].split()[0]) / 1024,
                   "imported": sorted(set(sys.modules) & set(libraries.split(",")))}, handle)
sys.argv = ["pmg", *args]
from bot.cli import app
try:
    app()
finally:
    report()
"""
MODEL_LIBRARIES = "torch,transformers,sentence_transformers,diffusers,open_clip,peft"


def front(args: list[str], report: Path, env: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """`pmg <args>` in its own process: its JSON output, and its exit report (peak RSS, model imports)."""
    done = subprocess.run(
        [sys.executable, "-c", FRONT, str(report), MODEL_LIBRARIES, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout), json.loads(report.read_text())


def stats_reply(api: FakeBotApi) -> str:
    return next((c.params["text"] for c in api.called("sendMessage") if "backend:" in c.params["text"]), "")


@pytest.fixture(scope="module")
def offline_app(ray_cluster: str, model_data_dir: Path) -> Iterator[dict[str, str]]:
    """The real offline engine in one replica; yields the environment of a front that uses it."""
    env = {
        **os.environ,
        "PMG_DATA_DIR": str(model_data_dir),
        "PMG_PROFILE": "offline",
        "PMG_RAY_APP": "offline",
        "PMG_BACKEND": "ray",
        "PMG_RAY_ADDRESS": ray_cluster,
    }
    settings = Settings(
        ray_app="offline", ray_replicas=1, ray_cpus_per_replica=0, profile="offline", data_dir=model_data_dir
    )
    deploy(settings)
    yield env
    serve.delete("offline")


def test_a_front_on_ray_makes_the_sticker_and_loads_no_model(
    offline_app: dict[str, str], tmp_path: Path
) -> None:
    """`pmg demo` with PMG_BACKEND=ray beside the same demo on the embedded default: the same sticker
    comes back and is stored, and the front imports no model library and peaks far below the process
    that holds the models."""
    ray_env = {**offline_app, "PMG_DB_URL": f"sqlite+aiosqlite:///{tmp_path / 'ray.db'}"}
    remote, on_ray = front(["demo", "--json", "--seed", "7"], tmp_path / "ray.json", ray_env)
    local_env = {
        **ray_env,
        "PMG_BACKEND": "local",
        "PMG_DB_URL": f"sqlite+aiosqlite:///{tmp_path / 'local.db'}",
    }
    local, in_process = front(["demo", "--json", "--seed", "7"], tmp_path / "local.json", local_env)

    for field in ("preference_keywords", "target_keywords", "mood", "chosen", "candidates"):
        assert remote[field] == local[field]
    assert Path(remote["path"]).is_file()
    assert on_ray["imported"] == []
    assert in_process["imported"] != []
    print(f"front peak memory: {on_ray['rss_mb']:.0f} MB on ray, {in_process['rss_mb']:.0f} MB local")
    assert on_ray["rss_mb"] < 0.5 * in_process["rss_mb"], (on_ray, in_process)
    with sqlite3.connect(tmp_path / "ray.db") as db:
        assert db.execute("select count(*) from generations").fetchone() == (1,)


async def test_the_runbook_a_telegram_front_on_ray_answers_sticker_and_stats(
    offline_app: dict[str, str], tmp_path: Path
) -> None:
    """README's runbook, step 4: `pmg run telegram` with PMG_BACKEND=ray against the fake Bot API; a user's
    /sticker is drawn by the replica and sent, and the admin's /stats names the backend and replicas."""
    async with FakeBotApi().serving() as api:
        urls = api.settings()
        env = {
            **offline_app,
            "PMG_DB_URL": f"sqlite+aiosqlite:///{tmp_path / 'front.db'}",
            "PMG_TELEGRAM_TOKEN": "123456:TEST-token",
            "PMG_TELEGRAM_BASE_URL": urls.telegram_base_url,
            "PMG_TELEGRAM_BASE_FILE_URL": urls.telegram_base_file_url,
            "PMG_ADMINS": f"telegram:{USERS['ann']}",
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli", "run", "telegram", env=env, stderr=asyncio.subprocess.PIPE
        )
        try:
            await api.wait_for("deleteWebhook", within_s=120)  # polling: the front is up
            await api.push(api.update(message=text_message("ann", "/sticker we won the cup!!", 1)))
            await api.wait_for("sendSticker", within_s=120)
            await api.push(api.update(message=text_message("ann", "/stats", 2)))
            await until(lambda: stats_reply(api), within_s=60)
        finally:
            process.send_signal(signal.SIGTERM)
            _, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert "replicas: {'RUNNING': 1}" in stats_reply(api)
    assert "Traceback" not in stderr.decode()


def test_bench_service_on_ray_measures_beside_local(ray_cluster: str, data_dir: Path) -> None:
    result = CliRunner().invoke(app, ["bench", "service", "--backend", "ray", "--users", "2", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["backend"] == "local" and report["batching_ratio"] > 0
    on_ray = report["ray"]
    assert on_ray["replicas"] == 1 and len(on_ray["rows"]) == 2 and on_ray["batching_ratio"] > 0
    assert on_ray["replica_peak_memory_mb"][0] > 500  # a replica that loaded the offline models
    assert report["ray_p50_overhead"] == on_ray["p50_single_s"] / report["p50_single_s"] - 1
    assert (
        report["ray_throughput_ratio"]
        == on_ray["throughput_batched_per_min"] / report["throughput_batched_per_min"]
    )
    assert "pmg-bench" not in serve.status().applications  # removed; a running `pmg serve` is left alone
