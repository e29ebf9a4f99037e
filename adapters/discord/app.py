"""The Discord client: discord.py's Bot with the sticker Cog, its intents, and `running_discord`, which
logs in, connects, syncs the slash commands and keeps the bot online until the block exits."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import aiohttp
import discord
from discord import app_commands
from discord.ext import commands

from adapters.discord.cog import StickerCog
from adapters.discord.replies import tell, tell_failure
from bot.chat_commands import HELP, StickerBot
from bot.settings import Settings

log = logging.getLogger(__name__)


class DiscordStartError(RuntimeError):
    """The bot could not start on Discord; the message says what to fix."""


def discord_intents() -> discord.Intents:
    """The default intents plus message content, which is privileged: enable "Message Content Intent"
    in the Developer Portal (your application → Bot) or Discord refuses the connection. Without it
    the bot would see no text, custom emoji or stickers of the messages it should learn from."""
    intents = discord.Intents.default()
    intents.message_content = True
    return intents


class StickerTree(app_commands.CommandTree):
    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        """A command Discord still lists but this bot no longer has gets a pointer to /help; anything
        else a command raised is logged with an id, and the user told."""
        if isinstance(error, app_commands.CommandNotFound | app_commands.CommandSignatureMismatch):
            log.warning("discord: %s", error)
            await tell(interaction, f"I don't know that command (any more). {HELP}")
            return
        await tell_failure(
            interaction, error.original if isinstance(error, app_commands.CommandInvokeError) else error
        )


class StickerClient(commands.Bot):
    """discord.py's Bot serving slash commands only: messages go to the Cog's listener, not to prefix commands."""

    def __init__(self, bot: StickerBot) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=discord_intents(),
            help_command=None,
            tree_cls=StickerTree,
        )
        self.sticker_bot = bot
        self.cog = StickerCog(self, bot)

    async def setup_hook(self) -> None:
        await self.add_cog(self.cog)

    async def stop_taking_updates(self) -> None:
        """From now on commands and presses are answered "restarting, ask again" at once (Discord keeps
        no update for the next start); messages are still recorded until the connection closes."""
        self.cog.restarting = True

    async def on_message(self, message: discord.Message, /) -> None:
        """No prefix commands: StickerCog.on_message records every message."""


async def sync_commands(
    tree: app_commands.CommandTree, guild_id: int | None
) -> list[app_commands.AppCommand]:
    """Slash commands to the test guild when one is set (they show there at once), else globally."""
    if guild_id is None:
        return await tree.sync()
    guild = discord.Object(guild_id)
    tree.copy_global_to(guild=guild)
    return await tree.sync(guild=guild)


@contextlib.asynccontextmanager
async def running_discord(settings: Settings, bot: StickerBot) -> AsyncIterator[StickerClient]:
    """Online until the block exits (ready, commands synced); then the connection is closed."""
    if settings.discord_token is None:
        raise DiscordStartError(
            "set PMG_DISCORD_TOKEN to your bot's token (Developer Portal → your application → Bot → Reset Token)"
        )
    async with StickerClient(bot) as client:
        try:
            await client.login(settings.discord_token.get_secret_value())
        except discord.LoginFailure as error:
            raise DiscordStartError(
                "Discord rejected PMG_DISCORD_TOKEN; copy it again from the Developer Portal (Bot tab)"
            ) from error
        except (aiohttp.ClientError, OSError) as error:
            raise DiscordStartError(f"cannot reach Discord: {error}") from error
        connection = asyncio.create_task(client.connect(), name="discord-gateway")
        try:
            await _until_ready(client, connection)
            synced = await sync_commands(client.tree, settings.discord_guild_id)
            where = f"guild {settings.discord_guild_id}" if settings.discord_guild_id else "all guilds"
            log.info("discord: online as %s, %d commands synced to %s", client.user, len(synced), where)
            yield client
        finally:
            await client.close()
            await asyncio.gather(connection, return_exceptions=True)  # close() ends connect()


async def _until_ready(client: StickerClient, connection: asyncio.Task[None]) -> None:
    ready = asyncio.create_task(client.wait_until_ready())
    await asyncio.wait({connection, ready}, return_when=asyncio.FIRST_COMPLETED)
    if ready.done():
        return
    ready.cancel()
    try:
        connection.result()
    except discord.PrivilegedIntentsRequired as error:
        raise DiscordStartError(
            "Discord refused the Message Content intent: enable it in the Developer Portal "
            "(your application → Bot → Privileged Gateway Intents → Message Content Intent)"
        ) from error
    raise DiscordStartError("the Discord connection closed before the bot was ready")
