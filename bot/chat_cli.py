"""`pmg chat --user NAME`: the bot in a terminal, over the same use cases as Telegram and Discord."""

from __future__ import annotations

import asyncio
import os
from typing import Annotated

import typer

from bot.cli_support import configure_logging, err, fail, load_engines, load_settings, out
from bot.identity import Platform, UserKey
from bot.settings import Profile, Settings


def about_text(settings: Settings, models: dict[str, str]) -> str:
    """/about: the profile, the models in use, and the attributions their licences ask for."""
    from pmg_engine.sticker_art.openmoji_files import ATTRIBUTION

    lines = [f"pmg-stickers, profile {settings.profile}"]
    lines += [f"{role}: {name}" for role, name in models.items()]
    lines.append(ATTRIBUTION)
    lines.append("Method: PMG, Personalized Multimodal Generation with LLMs (WWW '24).")
    return "\n".join(lines)


def chat(
    ctx: typer.Context,
    user: Annotated[str, typer.Option("--user", help="Your name in this terminal chat.")],
    profile: Annotated[Profile | None, typer.Option("--profile", help="offline, tiny or sd15.")] = None,
) -> None:
    """Talk to the bot in the terminal: messages, emoji as stickers, /start, /sticker, /privacy, /export, /forget."""
    from adapters.console.terminal import ConsolePlatform, chat_loop
    from bot.chat_commands import StickerBot
    from bot.composition import open_store, running_service, sticker_job

    settings = load_settings(profile)
    try:
        key = UserKey.of(Platform.CONSOLE, user)
    except ValueError as error:
        fail(f"--user: {error}", code=2)
    log_file = settings.data_dir / "logs" / "chat.log"
    configure_logging(verbose=ctx.find_root().params.get("verbose", False), log_file=log_file)
    err.print(f"[dim]logs go to {log_file}[/]", highlight=False)
    # The model libraries' progress bars would draw over the spinner and the conversation; the libraries
    # read these when load_engines imports them.
    os.environ.update(HF_HUB_DISABLE_PROGRESS_BARS="1", TQDM_DISABLE="1")
    stage1, stage2 = load_engines(settings)

    async def read() -> str | None:
        try:
            return await asyncio.to_thread(input, f"{user}> ")
        except EOFError:
            return None

    async def run() -> None:
        async with (
            await open_store(settings) as store,
            running_service(stage1, stage2, settings) as service,
        ):
            about = about_text(settings, {"llm": stage1.model_name, **stage2.models})
            bot = StickerBot(store, service, settings, sticker_job(settings), about=about)
            platform = ConsolePlatform(out, bot.files, key)
            err.print(
                "type a message, an emoji to send it as a sticker, /start, /sticker TEXT, /quit",
                highlight=False,
            )
            await chat_loop(bot, platform, key, read)

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        err.print("bye")
