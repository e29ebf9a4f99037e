"""`pmg run telegram|discord|all`: the bot on its platforms until Ctrl-C or SIGTERM, then a clean stop:
the platforms stop taking updates, requests still waiting are told to ask again, updates in hand are
answered, the database is closed. A second Ctrl-C or SIGTERM exits within seconds, whatever is left."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Protocol

import typer

from bot.chat_cli import about_text
from bot.cli_support import err, fail, load_settings, load_stages
from bot.settings import Profile, Settings

if TYPE_CHECKING:
    from bot.chat_commands import StickerBot
    from pmg_engine.keywords import KeywordEngine
    from pmg_engine.stickers import StickerMaker

log = logging.getLogger(__name__)


class Target(StrEnum):
    TELEGRAM = "telegram"
    DISCORD = "discord"
    ALL = "all"


FORCED_EXIT_S = 4.0  # after a second signal: the longest the process may still take to end
EXIT_FORCED = 130  # the exit status of a stop cut short by a second signal


class RunningAdapter(Protocol):
    """A platform while it runs: it can stop taking updates before the rest of the bot stops."""

    async def stop_taking_updates(self) -> None: ...


Runner = Callable[[Settings, "StickerBot"], AbstractAsyncContextManager[RunningAdapter]]


def runners(target: Target) -> dict[str, Runner]:
    """The adapters to start, by name (imported here: each pulls in its platform's library)."""
    from adapters.discord.app import running_discord
    from adapters.telegram.app import running_telegram

    known: dict[str, Runner] = {"telegram": running_telegram, "discord": running_discord}
    return known if target is Target.ALL else {target.value: known[target.value]}


def missing_tokens(settings: Settings, names: list[str]) -> list[str]:
    tokens = {"telegram": settings.telegram_token, "discord": settings.discord_token}
    return [f"PMG_{name.upper()}_TOKEN" for name in names if tokens[name] is None]


async def serve(
    settings: Settings,
    stages: tuple[KeywordEngine, StickerMaker] | None,
    adapters: dict[str, Runner],
    stop: asyncio.Event,
) -> None:
    """Run the adapters over one store and one sticker backend (`stages` in process, or none: the Ray
    deployment) until `stop` is set."""
    from bot.chat_commands import StickerBot
    from bot.composition import backend_models, open_store, sticker_backend, sticker_job
    from bot.metrics_http import serve_metrics

    async with (
        await open_store(settings) as store,
        sticker_backend(settings, stages) as service,
        AsyncExitStack() as running,
    ):
        about = about_text(settings, await backend_models(service, stages))
        bot = StickerBot(store, service, settings, sticker_job(settings), about=about)
        if settings.metrics_port is not None:
            metrics = await serve_metrics(service.prometheus, settings.metrics_port)
            running.push_async_callback(_closed, metrics)
        platforms = [await running.enter_async_context(runner(settings, bot)) for runner in adapters.values()]
        err.print(f"running on {', '.join(adapters)}; Ctrl-C or SIGTERM stops", highlight=False)
        await stop.wait()
        err.print(
            "stopping: waiting requests are told to ask again (a second Ctrl-C exits now)", highlight=False
        )
        for platform in platforms:  # first: no update may reach a service that is stopping
            await platform.stop_taking_updates()
        await service.stop()  # then waiting users are answered; on exit the adapters finish the rest
    err.print("stopped", highlight=False)


async def _closed(server: asyncio.Server) -> None:
    server.close()
    await server.wait_closed()


def run(
    target: Annotated[Target, typer.Argument(help="telegram, discord, or all.")],
    profile: Annotated[Profile | None, typer.Option("--profile", help="offline, tiny or sd15.")] = None,
) -> None:
    """Run the bot on Telegram and/or Discord (tokens from PMG_TELEGRAM_TOKEN / PMG_DISCORD_TOKEN)."""
    from adapters.discord.app import DiscordStartError
    from adapters.store.errors import StoreError
    from adapters.telegram.app import TelegramStartError
    from bot.ray_backend import BackendUnavailable

    settings = load_settings(profile)
    adapters = runners(target)
    missing = missing_tokens(settings, list(adapters))
    if missing:
        fail(f"set {' and '.join(missing)} (README: Running the bot) — or try it offline with `pmg chat`")
    stages = load_stages(settings)

    async def main() -> None:
        stop = asyncio.Event()
        on_signal = StopOnSignals(stop, asyncio.current_task())
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, on_signal)
        await serve(settings, stages, adapters, stop)

    try:
        asyncio.run(main())
    except (TelegramStartError, DiscordStartError, BackendUnavailable, StoreError) as error:
        fail(str(error))
    except asyncio.CancelledError:
        fail("stopped by a second signal before everything was finished", code=EXIT_FORCED)


class StopOnSignals:
    """The first signal asks for a clean stop; the second cancels what is left and, should a model
    thread still hold the process, ends it FORCED_EXIT_S later."""

    def __init__(self, stop: asyncio.Event, main: asyncio.Task[object] | None) -> None:
        self.stop = stop
        self.main = main

    def __call__(self) -> None:
        if not self.stop.is_set():
            self.stop.set()
            return
        err.print("second signal: exiting now", highlight=False)
        deadline = threading.Timer(FORCED_EXIT_S, _exit_now)
        deadline.daemon = True
        deadline.start()
        if self.main is not None:
            self.main.cancel()


def _exit_now() -> None:
    logging.shutdown()  # flush what the log has before the hard exit
    os._exit(EXIT_FORCED)
