"""The bot's answers to one Discord interaction: follow-ups (text with buttons, the PNG sticker, private
files), progress as edits of the deferred response, and a short word when something failed."""

from __future__ import annotations

import contextlib
import io
import logging
import uuid
from typing import Any

import discord

from adapters.discord.server_stickers import server_stickers
from bot.chat import Button, StickerPacks
from bot.identity import Platform

log = logging.getLogger(__name__)

BUTTON_PREFIX = "pmg:"  # custom_id = prefix + action; StickerCog.on_interaction answers these
MAX_CONTENT = 2000  # Discord's message length limit
MAX_LABEL = 80  # Discord's button label limit


class InteractionReplies:
    """A ChatPlatform for one deferred interaction. `ephemeral` answers are seen by the asker alone; on
    a public command (/sticker) only the sticker is public, every text is for the asker alone."""

    platform = Platform.DISCORD

    def __init__(self, interaction: discord.Interaction, *, ephemeral: bool) -> None:
        self.interaction = interaction
        self.ephemeral = ephemeral
        self.packs: StickerPacks | None = server_stickers(interaction)
        self._progress_shown = False
        # Discord makes the first follow-up of a deferral into the deferred "thinking…" message, with
        # the deferral's visibility: while that placeholder stands, a public command's text must not
        # be that follow-up.
        self._placeholder = not ephemeral

    async def fail(self, error: BaseException) -> None:
        """A command that raised: logged with an id, and the asker alone told (never the channel)."""
        await self.send_text("", failure_text(self.interaction, error))

    async def defer(self) -> None:
        """Acknowledge at once: Discord drops an interaction not answered within 3 s."""
        await self.interaction.response.defer(ephemeral=self.ephemeral, thinking=True)

    async def send_text(self, chat: str, text: str, buttons: list[Button] | None = None) -> None:
        await self._end_progress(None)
        await self._drop_placeholder()
        if buttons:
            await self._followup(content=text[:MAX_CONTENT], view=button_view(buttons), private=True)
        else:
            await self._followup(content=text[:MAX_CONTENT], private=True)

    async def send_sticker(
        self, chat: str, webp: bytes, png: bytes, buttons: list[Button] | None = None
    ) -> str | None:
        """Discord shows PNG attachments inline; WebP is the Telegram sticker format. The buttons are seen
        by the channel, but only the user the sticker was made for may press them."""
        extra: dict[str, Any] = {"view": button_view(buttons)} if buttons else {}
        await self._followup(file=discord.File(io.BytesIO(png), "sticker.png"), **extra)
        self._placeholder = False
        await self._end_progress("done ✓")
        return None

    async def send_image(
        self, chat: str, png: bytes, caption: str, buttons: list[Button] | None = None
    ) -> None:
        """The contact sheet, to the asker alone (choosing is theirs; the chosen sticker is public)."""
        await self._end_progress(None)
        extra: dict[str, Any] = {"view": button_view(buttons)} if buttons else {}
        await self._followup(
            content=caption[:MAX_CONTENT],
            file=discord.File(io.BytesIO(png), "candidates.png"),
            private=True,
            **extra,
        )

    async def send_file(self, chat: str, filename: str, data: bytes) -> None:
        """Files hold the user's own data: always ephemeral, whatever the command."""
        await self._end_progress(None)
        await self._followup(file=discord.File(io.BytesIO(data), filename), private=True)

    async def progress(self, chat: str, text: str) -> None:
        """Updates come one at a time (bot.progress_relay), each an edit of the deferred response."""
        if self.interaction.is_expired():
            return
        with contextlib.suppress(discord.HTTPException):  # the response was dismissed or deleted
            await self.interaction.edit_original_response(content=text[:MAX_CONTENT])
            self._progress_shown = True
            self._placeholder = False

    async def _followup(self, *, private: bool = False, **message: Any) -> None:
        if self.interaction.is_expired():
            # The interaction token lives 15 minutes; a retrain outlasts it, so its report goes by DM.
            try:
                await self.interaction.user.send(**message)
            except discord.HTTPException as error:
                log.warning(
                    "could not reach %s after the interaction expired: %s", self.interaction.user, error
                )
            return
        await self.interaction.followup.send(**message, ephemeral=self.ephemeral or private)

    async def _drop_placeholder(self) -> None:
        """Take down a public command's "thinking…" before a text for the asker alone goes out."""
        if not self._placeholder or self.interaction.is_expired():
            return
        self._placeholder = False
        with contextlib.suppress(discord.HTTPException):
            await self.interaction.delete_original_response()

    async def _end_progress(self, text: str | None) -> None:
        """The final answer is here: the progress message says done, or goes when a text explains."""
        if not self._progress_shown or self.interaction.is_expired():
            return
        self._progress_shown = False
        with contextlib.suppress(discord.HTTPException):
            if text is None:
                await self.interaction.delete_original_response()
            else:
                await self.interaction.edit_original_response(content=text)


def button_view(buttons: list[Button]) -> discord.ui.View:
    """The buttons as a message layout. StickerCog.on_interaction answers their presses by custom_id, so
    they work after a restart; the view is stopped before sending so discord.py keeps no state for it."""
    view = discord.ui.View(timeout=None)
    for button in buttons:
        view.add_item(
            discord.ui.Button(label=button.label[:MAX_LABEL], custom_id=BUTTON_PREFIX + button.action)
        )
    view.stop()
    return view


async def tell(interaction: discord.Interaction, text: str) -> None:
    """A short private answer, whether or not the interaction was deferred (a failed send is logged)."""
    try:
        if interaction.response.is_done():
            await interaction.followup.send(text, ephemeral=True)
        else:
            await interaction.response.send_message(text, ephemeral=True)
    except discord.HTTPException as error:
        log.warning("could not answer interaction %s: %s", interaction.id, error)


def failure_text(interaction: discord.Interaction, error: BaseException) -> str:
    """An answer that failed: the detail to the log with an id; returns the short word for the user."""
    error_id = uuid.uuid4().hex[:8]
    log.error("discord interaction %s failed (error %s)", interaction.id, error_id, exc_info=error)
    return f"Sorry, something went wrong (error {error_id}). Please try again."


async def tell_failure(interaction: discord.Interaction, error: BaseException) -> None:
    """A failure before any InteractionReplies could answer (a listener, the command tree)."""
    await tell(interaction, failure_text(interaction, error))
