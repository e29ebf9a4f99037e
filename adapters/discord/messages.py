"""Discord messages as the bot's platform-neutral IncomingMessage: the words, and every custom emoji,
sticker and unicode emoji as a sticker use, each image downloaded only when the use case asks for it
(training consent)."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable

import aiohttp
import discord
import emoji

from bot.chat import MAX_STICKER_BYTES, ImageLoader, IncomingMessage, IncomingSticker, plain_words
from bot.identity import Platform, UserKey
from pmg_engine.behaviors import StickerSent, emoji_name

log = logging.getLogger(__name__)

CUSTOM_EMOJI = re.compile(r"<a?:[A-Za-z0-9_]{2,32}:[0-9]{13,20}>")  # <:name:id>, <a:name:id> (animated)
# Sticker formats that are pictures: lottie is a JSON animation, so such a sticker has no image here.
PICTURE_FORMATS = {discord.StickerFormatType.png, discord.StickerFormatType.apng}
Download = Callable[[str], Awaitable[bytes]]  # an asset URL -> its bytes (discord.py's CDN reader)


def incoming_message(message: discord.Message, download: Download) -> IncomingMessage | None:
    """None for what has no person behind it: bots (this one too), webhooks, system messages."""
    if message.author.bot or message.webhook_id is not None or message.is_system():
        return None
    return IncomingMessage(
        user=UserKey.of(Platform.DISCORD, message.author.id),
        chat=str(message.channel.id),
        text=words(message.content),
        message_id=str(message.id),
        stickers=message_stickers(message, download),
        display_name=message.author.display_name,
    )


def words(content: str) -> str:
    """The text without emoji markup: custom and unicode emoji are recorded as sticker uses instead."""
    return plain_words(CUSTOM_EMOJI.sub("", content))


def message_stickers(message: discord.Message, download: Download) -> list[IncomingSticker]:
    """Custom emoji, then Discord stickers, then unicode emoji, each in the order sent."""
    found = []
    for markup in CUSTOM_EMOJI.findall(message.content):
        custom = discord.PartialEmoji.from_str(markup)
        sticker = StickerSent(name=custom.name, platform_sticker_id=str(custom.id))
        found.append(IncomingSticker(sticker, capped(f"emoji {custom.id}", download, custom.url)))
    for item in message.stickers:
        image = capped(f"sticker {item.id}", download, item.url) if item.format in PICTURE_FORMATS else None
        found.append(IncomingSticker(StickerSent(name=item.name, platform_sticker_id=str(item.id)), image))
    for symbol in (match["emoji"] for match in emoji.emoji_list(message.content)):
        found.append(IncomingSticker(StickerSent(symbol, emoji_name(symbol))))
    return found


def capped(what: str, download: Download, url: str) -> ImageLoader:
    """Download `url` when asked; a failed or oversized download is logged and the use kept without it."""

    async def load() -> bytes | None:
        try:
            data = await download(url)
        except (discord.DiscordException, aiohttp.ClientError, OSError) as error:
            log.warning("%s: download failed (%s)", what, error)
            return None
        if len(data) > MAX_STICKER_BYTES:
            log.warning("%s: %d bytes is over the %d-byte cap", what, len(data), MAX_STICKER_BYTES)
            return None
        return data

    return load
