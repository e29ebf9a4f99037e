"""The bot's one Cog: slash commands and button presses, and the messages, edits and deletes it can
read, routed to the shared use cases. Each command defers first, then answers with follow-ups."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from adapters.discord.messages import incoming_message
from adapters.discord.replies import BUTTON_PREFIX, InteractionReplies, tell, tell_failure
from bot.chat import IncomingMessage
from bot.chat_commands import StickerBot
from bot.identity import Platform, UserKey
from bot.service import ServiceStopped

PUBLIC = {"sticker"}  # the sticker is for the whole channel; every other answer is for the asker alone
MAX_STICKER_TEXT = 500  # characters of a /sticker text; the model reads a sentence, not an essay


class StickerCog(commands.Cog):
    """Discord events in, use cases called; one InteractionReplies per interaction answers."""

    def __init__(self, client: commands.Bot, bot: StickerBot) -> None:
        self.client = client
        self.bot = bot
        self.restarting = False  # set by StickerClient.stop_taking_updates

    # --- slash commands (admin-only is checked by the use cases against PMG_ADMINS;
    #     default_permissions only hides /stats and /retrain from non-admins' command lists) ---

    @app_commands.command(description="A sticker for what you say (or your last messages here)")
    @app_commands.describe(text="what the sticker answers")
    async def sticker(
        self,
        interaction: discord.Interaction,
        text: app_commands.Range[str, 1, MAX_STICKER_TEXT] | None = None,
    ) -> None:
        await self._command(interaction, "sticker", text or "")

    @app_commands.command(description="What I do, and your consent")
    async def start(self, interaction: discord.Interaction) -> None:
        await self._command(interaction, "start")

    @app_commands.command(description="See or change what I may learn from you")
    async def consent(self, interaction: discord.Interaction) -> None:
        await self._command(interaction, "consent")

    @app_commands.command(description="What I store, why, and how to delete it")
    async def privacy(self, interaction: discord.Interaction) -> None:
        await self._command(interaction, "privacy")

    @app_commands.command(description="All your data, as a file only you see")
    async def export(self, interaction: discord.Interaction) -> None:
        await self._command(interaction, "export")

    @app_commands.command(description="Delete everything about you")
    async def forget(self, interaction: discord.Interaction) -> None:
        await self._command(interaction, "forget")

    @app_commands.command(description="Models, profile and credits")
    async def about(self, interaction: discord.Interaction) -> None:
        await self._command(interaction, "about")

    @app_commands.command(name="help", description="The commands")
    async def show_help(self, interaction: discord.Interaction) -> None:
        await self._command(interaction, "help")

    @app_commands.command(description="Counts and the service's state (admins)")
    @app_commands.default_permissions(administrator=True)
    async def stats(self, interaction: discord.Interaction) -> None:
        await self._command(interaction, "stats")

    @app_commands.command(description="Retrain the model on consented data (admins)")
    @app_commands.default_permissions(administrator=True)
    async def retrain(self, interaction: discord.Interaction) -> None:
        await self._command(interaction, "retrain")

    async def _command(self, interaction: discord.Interaction, name: str, argument: str = "") -> None:
        """Defer, then run `/name argument` as any platform's command; a failure is told to the asker
        alone (a failed deferral reaches the tree's on_error)."""
        if self.restarting:
            await tell(interaction, f"Sorry, {ServiceStopped()}.")
            return
        replies = InteractionReplies(interaction, ephemeral=name not in PUBLIC)
        await replies.defer()
        message = IncomingMessage(
            user=UserKey.of(Platform.DISCORD, interaction.user.id),
            chat=_chat(interaction),
            text=f"/{name} {argument}".strip(),
            display_name=interaction.user.display_name,
        )
        try:
            await self.bot.dispatch(replies, message)
        except Exception as error:
            await replies.fail(error)

    # --- buttons, messages, edits, deletes ---------------------------------------------------

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction) -> None:
        """Our buttons, known by their custom_id alone, so those sent before a restart still work."""
        custom_id = interaction.custom_id if interaction.type is discord.InteractionType.component else None
        if custom_id is None or not custom_id.startswith(BUTTON_PREFIX):
            return
        if self.restarting:
            await tell(interaction, f"Sorry, {ServiceStopped()}.")
            return
        replies = InteractionReplies(interaction, ephemeral=True)
        try:
            await replies.defer()
            user = UserKey.of(Platform.DISCORD, interaction.user.id)
            await self.bot.on_button(replies, user, _chat(interaction), custom_id.removeprefix(BUTTON_PREFIX))
        except Exception as error:  # no tree catches a listener's errors: the presser hears of it here
            await tell_failure(interaction, error)

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        """Every message is behavior (with consent): slash commands arrive as interactions, never as text."""
        incoming = self._incoming(message)
        if incoming is not None:
            await self.bot.record(incoming)

    @commands.Cog.listener()
    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        if payload.message.edited_at is None:  # a link preview unfolding, not the user editing
            return
        incoming = self._incoming(payload.message)
        if incoming is not None:
            await self.bot.edited(incoming)

    @commands.Cog.listener()
    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        await self.bot.deleted(Platform.DISCORD, str(payload.channel_id), str(payload.message_id))

    @commands.Cog.listener()
    async def on_raw_bulk_message_delete(self, payload: discord.RawBulkMessageDeleteEvent) -> None:
        for message_id in payload.message_ids:
            await self.bot.deleted(Platform.DISCORD, str(payload.channel_id), str(message_id))

    def _incoming(self, message: discord.Message) -> IncomingMessage | None:
        return incoming_message(message, self.client.http.get_from_cdn)


def _chat(interaction: discord.Interaction) -> str:
    return str(interaction.channel_id or interaction.user.id)
