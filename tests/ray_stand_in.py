"""A stand-in sticker engine for the Ray tests, run in Serve replicas (other processes): the real engine is
minutes of CPU per batch. A test holds every run by creating no `release` file in a folder it owns, and
reads what each run saw from the outcome: its batch, its process and the checkpoint bytes it got."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class StandInRequest:
    text: str
    checkpoint: tuple[str, Path] | None = None


@dataclass(frozen=True)
class StandInOutcome:
    text: str
    batch: tuple[str, ...]
    pid: int
    checkpoint: str | None  # the bytes of the checkpoint file the replica was given, decoded


class StandInEngine:
    """Runs are held while `gate` exists and `release` does not; a held run polls `interrupted` as the
    diffusion loop does between steps and notes an interruption in `gate/interrupted-<pid>`."""

    def __init__(self, gate: Path) -> None:
        self.gate = gate
        self.models = {"generator": "stand-in"}

    def load(self) -> None:
        from ray import serve

        self.actor = serve.get_replica_context().replica_id.to_full_id_str()  # the replica actor's name

    def run(self, requests: list[StandInRequest], interrupted: Callable[[], bool]) -> list[StandInOutcome]:
        (self.gate / f"started-{os.getpid()}-{time.monotonic_ns()}").write_text(
            "\n".join([self.actor, *(r.text for r in requests)])
        )
        deadline = time.monotonic() + 30
        while not (self.gate / "release").exists() and time.monotonic() < deadline:
            if interrupted():
                (self.gate / f"interrupted-{os.getpid()}").touch()
                break
            time.sleep(0.01)
        if any(r.text.startswith("fail") for r in requests):
            raise ValueError("a bad request")
        batch = tuple(r.text for r in requests)
        return [
            StandInOutcome(r.text, batch, os.getpid(), r.checkpoint[1].read_text() if r.checkpoint else None)
            for r in requests
        ]


def stand_in_engine(gate: Path) -> StandInEngine:
    return StandInEngine(gate)
