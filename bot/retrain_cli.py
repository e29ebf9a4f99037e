"""`pmg retrain`: the admin job from a terminal, with a progress bar, Ctrl-C to stop and resume later."""

from __future__ import annotations

import asyncio
import json
import signal
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from bot.cli_support import err, fail, load_settings, out
from bot.retrain import RetrainError, RetrainLock, RetrainReport, retrain
from bot.settings import Profile


def run_retrain(
    profile: Annotated[
        Profile | None, typer.Option("--profile", help="tiny or sd15 (default: PMG_PROFILE).")
    ] = None,
    steps: Annotated[
        int | None, typer.Option("--steps", min=1, help="Optimizer steps (default: PMG_TRAIN_STEPS).")
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run Ctrl-C stopped.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Train the soft preference embeddings on consenting users' stickers; promote if better on held-out users."""
    from bot.composition import open_store
    from pmg_engine.model_sources import ModelUnavailableError
    from pmg_engine.soft_prompt import CheckpointError

    settings = load_settings(profile)
    stop = {"asked": False}

    def ask_to_stop(signum: int, frame: object) -> None:
        if stop["asked"]:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now, without a snapshot
        stop["asked"] = True
        err.print("[yellow]stopping after this step; `pmg retrain --resume` continues[/]")

    def found(report: RetrainReport) -> None:
        if not as_json:
            err.print(f"training data: {report.examples} examples from {report.users} users", highlight=False)

    async def run() -> RetrainReport:
        async with await open_store(settings) as store:
            with Progress(
                TextColumn("[bold]training[/] {task.completed}/{task.total}"),
                BarColumn(),
                TextColumn("loss {task.fields[loss]:.4f}"),
                TimeRemainingColumn(),
                console=err,
                transient=True,
            ) as bar:
                task = bar.add_task("train", total=steps or settings.train_steps, loss=float("nan"))
                return await retrain(
                    store,
                    settings,
                    steps=steps,
                    resume=resume,
                    found=found,
                    should_stop=lambda: stop["asked"],
                    progress=lambda p: bar.update(task, completed=p.step, total=p.steps, loss=p.loss),
                )

    previous = signal.signal(signal.SIGINT, ask_to_stop)
    try:
        with RetrainLock(settings.data_dir):
            report = asyncio.run(run())
    except (RetrainError, ModelUnavailableError, CheckpointError, FloatingPointError) as error:
        fail(str(error))
    finally:
        signal.signal(signal.SIGINT, previous)
    if as_json:
        out.print_json(json.dumps(report.as_dict()))
    else:
        _print(report)
    if report.status == "cancelled":
        raise typer.Exit(130)


def _print(report: RetrainReport) -> None:
    out.print(
        f"examples {report.examples} from {report.users} users ({report.validation_users} held out)",
        highlight=False,
    )
    if report.loss_first is not None:
        out.print(
            f"steps {report.steps}: loss {report.loss_first:.4f} → {report.loss_last:.4f}", highlight=False
        )
    if report.val_loss_before is not None and report.val_loss_after is not None:
        out.print(
            f"held-out loss {report.val_loss_before:.4f} (in service) → {report.val_loss_after:.4f} (new)",
            highlight=False,
        )
    for note in report.notes:
        out.print(f"[yellow]note:[/] {note}", highlight=False)
    if report.status == "cancelled":
        out.print(f"stopped at step {report.steps}; `pmg retrain --resume` continues", highlight=False)
    elif report.promoted:
        out.print(
            f"[bold green]checkpoint {report.checkpoint} promoted[/]: stickers use it from the next request",
            highlight=False,
        )
    else:
        out.print(f"checkpoint {report.checkpoint} kept on file, not promoted", highlight=False)
    out.print(f"{report.seconds:.0f} s", highlight=False)
