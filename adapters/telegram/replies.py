"""The bot's answers on Telegram, for one update: text with inline buttons, WebP stickers, private
files, and one progress message edited in place (queued → drawing → done)."""

from __future__ import annotations

import contextlib

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, ReplyParameters
from telegram.constants import MessageLimit
from telegram.error import BadRequest, Forbidden

from adapters.telegram.packs import TelegramPacks
from bot.chat import Button, StickerPacks
from bot.identity import Platform


class TelegramReplies:
    platform = Platform.TELEGRAM

    def __init__(
        self,
        bot: Bot,
        user_id: int,
        *,
        private_chat: bool,
        reply_to: int | None = None,
        first_name: str | None = None,
    ) -> None:
        self.bot = bot
        self.user_id = user_id
        self.packs: StickerPacks | None = TelegramPacks(bot, user_id, first_name)
        self.private_chat = private_chat
        # In a busy group the sticker answers the /sticker it was asked with (if that still exists).
        self.reply_to = ReplyParameters(reply_to, allow_sending_without_reply=True) if reply_to else None
        self._progress: int | None = None  # the progress message being edited

    async def send_text(self, chat: str, text: str, buttons: list[Button] | None = None) -> None:
        markup = (
            InlineKeyboardMarkup([[InlineKeyboardButton(b.label, callback_data=b.action)] for b in buttons])
            if buttons
            else None
        )
        await self._end_progress(chat, None)
        await self.bot.send_message(int(chat), text[: MessageLimit.MAX_TEXT_LENGTH], reply_markup=markup)

    async def send_sticker(
        self, chat: str, webp: bytes, png: bytes, buttons: list[Button] | None = None
    ) -> str | None:
        sent = await self.bot.send_sticker(
            int(chat),
            InputFile(webp, filename="sticker.webp"),
            reply_parameters=self.reply_to,
            reply_markup=one_row(buttons),
        )
        await self._end_progress(chat, "done ✓")
        return sent.sticker.file_id if sent.sticker else None

    async def send_image(
        self, chat: str, png: bytes, caption: str, buttons: list[Button] | None = None
    ) -> None:
        await self._end_progress(chat, None)
        await self.bot.send_photo(
            int(chat),
            InputFile(png, filename="candidates.png"),
            caption=caption[: MessageLimit.CAPTION_LENGTH],
            reply_markup=one_row(buttons),
        )

    async def send_file(self, chat: str, filename: str, data: bytes) -> None:
        """Files hold the user's own data: they go to the private chat with the user, never a group."""
        if self.private_chat:
            await self.bot.send_document(int(chat), InputFile(data, filename=filename))
            return
        try:
            await self.bot.send_document(self.user_id, InputFile(data, filename=filename))
        except Forbidden:  # the user never opened a private chat with the bot
            await self.send_text(
                chat, "I send your data only in private: open a chat with me, press Start, and ask there."
            )
            return
        await self.send_text(chat, "Sent it to you in our private chat.")

    async def progress(self, chat: str, text: str) -> None:
        """Updates come one at a time (bot.progress_relay): the first is sent, the rest edit it."""
        if self._progress is None:
            self._progress = (await self.bot.send_message(int(chat), text)).message_id
            return
        with contextlib.suppress(BadRequest):  # "message is not modified", or it was deleted
            await self.bot.edit_message_text(text, chat_id=int(chat), message_id=self._progress)

    async def _end_progress(self, chat: str, text: str | None) -> None:
        """The final answer is here: the progress message says done, or goes when a text explains."""
        if self._progress is None:
            return
        message_id, self._progress = self._progress, None
        with contextlib.suppress(BadRequest):
            if text is None:
                await self.bot.delete_message(int(chat), message_id)
            else:
                await self.bot.edit_message_text(text, chat_id=int(chat), message_id=message_id)


def one_row(buttons: list[Button] | None) -> InlineKeyboardMarkup | None:
    """Buttons side by side under a sticker or picture (🔄 🎨 ➕, or 1…N)."""
    if not buttons:
        return None
    return InlineKeyboardMarkup([[InlineKeyboardButton(b.label, callback_data=b.action) for b in buttons]])
