"""Telegram messages as the bot's platform-neutral IncomingMessage: text, the sticker, custom and unicode
emoji, each sticker image fetched only when the use case asks for it (training consent)."""

from __future__ import annotations

import logging

import emoji
from telegram import Bot, Message, MessageEntity, PhotoSize, Sticker
from telegram.error import TelegramError

from bot.chat import MAX_STICKER_BYTES, ImageLoader, IncomingMessage, IncomingSticker, plain_words
from bot.identity import Platform, UserKey
from pmg_engine.behaviors import StickerSent, emoji_name

log = logging.getLogger(__name__)


def incoming_message(bot: Bot, message: Message) -> IncomingMessage | None:
    """None for what has no person behind it (channel posts, anonymous admins)."""
    sender = message.from_user
    if sender is None or sender.is_bot:
        return None
    text = message.text or message.caption or ""
    return IncomingMessage(
        user=UserKey.of(Platform.TELEGRAM, sender.id),
        chat=str(message.chat.id),
        text=text if text.startswith("/") else plain_words(text),  # a command keeps its emoji
        message_id=str(message.message_id),
        stickers=message_stickers(bot, message),
        display_name=sender.full_name,
    )


def message_stickers(bot: Bot, message: Message) -> list[IncomingSticker]:
    """The sticker, then custom emoji, then unicode emoji of the text, in that order."""
    found: list[IncomingSticker] = []
    if message.sticker is not None:
        found.append(IncomingSticker(sticker_sent(message.sticker), sticker_image(bot, message.sticker)))
    custom = message.parse_entities([MessageEntity.CUSTOM_EMOJI]) | message.parse_caption_entities(
        [MessageEntity.CUSTOM_EMOJI]
    )
    for entity, fallback in custom.items():
        found.append(
            IncomingSticker(StickerSent(fallback, emoji_name(fallback), None, entity.custom_emoji_id))
        )
    text = message.text or message.caption or ""
    for symbol in (match["emoji"] for match in emoji.emoji_list(text)):
        if symbol not in custom.values():
            found.append(IncomingSticker(StickerSent(symbol, emoji_name(symbol))))
    return found


def sticker_sent(sticker: Sticker) -> StickerSent:
    return StickerSent(
        emoji=sticker.emoji,
        name=emoji_name(sticker.emoji),
        set_title=sticker.set_name,
        platform_sticker_id=sticker.file_unique_id,
    )


def sticker_image(bot: Bot, sticker: Sticker) -> ImageLoader | None:
    """The sticker's picture: the file of a static sticker, the still thumbnail of an animated or video
    one (TGS and WebM are not pictures); None when there is no file."""
    source: Sticker | PhotoSize | None = (
        sticker.thumbnail if sticker.is_animated or sticker.is_video else sticker
    )
    if source is None:
        return None
    file_id, announced = source.file_id, source.file_size or 0

    async def download() -> bytes | None:
        if announced > MAX_STICKER_BYTES:
            log.warning("sticker %s: %d bytes is over the download cap", file_id, announced)
            return None
        try:
            file = await bot.get_file(file_id)
            if (file.file_size or 0) > MAX_STICKER_BYTES:
                log.warning("sticker %s: %d bytes is over the download cap", file_id, file.file_size)
                return None
            data = bytes(await file.download_as_bytearray())
        except TelegramError as error:
            log.warning("sticker %s: no file (%s); the use is kept without its image", file_id, error)
            return None
        return data if len(data) <= MAX_STICKER_BYTES else None

    return download
