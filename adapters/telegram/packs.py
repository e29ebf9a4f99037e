"""A user's personal sticker sets on Telegram, made by the bot: `pmg_<hash>_by_<bot>` first, then
`pmg_<hash>_<n>_by_<bot>` once one is full (or the user deleted it in @Stickers)."""

from __future__ import annotations

import hashlib
import logging

from telegram import Bot, InputFile, InputSticker
from telegram.constants import StickerFormat
from telegram.error import BadRequest, Forbidden

from bot.chat import PackProblem, PackResult
from bot.identity import UserKey

log = logging.getLogger(__name__)

MAX_KEYWORDS = 20  # Telegram's limit per sticker, each at most 64 characters
OPEN_A_CHAT = (
    "I can only make your pack once you have opened a private chat with me: open it, press Start, "
    "then press ➕ My pack again."
)
BLOCKED = "You blocked me, so I can't make your pack: unblock me in our private chat, then press ➕ again."
DELETED = "STICKERSET_INVALID"  # addStickerToSet on a set the user deleted in @Stickers
FULL = "STICKERS_TOO_MUCH"


class TelegramPacks:
    """The sticker sets of the user one update came from."""

    label = "➕ My pack"

    def __init__(self, bot: Bot, user_id: int, first_name: str | None) -> None:
        self.bot = bot
        self.user_id = user_id
        self.title = f"{first_name or 'My'}'s stickers"[:64]

    def link(self, name: str) -> str:
        return f"https://t.me/addstickers/{name}"

    def name(self, user: UserKey, number: int) -> str:
        """A set name Telegram accepts: a letter first, no double underscores, ending in _by_<bot>."""
        digest = hashlib.sha256(f"{user}".encode()).hexdigest()[:10]
        part = f"pmg_{digest}" if number == 1 else f"pmg_{digest}_{number}"
        return f"{part}_by_{self.bot.username}"

    async def add(
        self, user: UserKey, sticker: bytes, emoji: str, keywords: list[str], packs: list[str]
    ) -> PackResult:
        item = InputSticker(
            InputFile(sticker, filename="sticker.webp"),
            [emoji],
            StickerFormat.STATIC,
            keywords=[k[:64] for k in keywords[:MAX_KEYWORDS]],
        )
        dropped = None
        if packs:
            try:
                await self.bot.add_sticker_to_set(self.user_id, packs[-1], item)
                return PackResult(packs[-1], f"your pack: {self.link(packs[-1])}")
            except BadRequest as error:
                reason = error.message.upper()
                if DELETED in reason:
                    dropped = packs[-1]
                elif FULL not in reason:
                    raise self._problem(error) from error
            except Forbidden as error:
                raise PackProblem(BLOCKED) from error
        name = self.name(user, len(packs) + 1)
        try:
            await self.bot.create_new_sticker_set(self.user_id, name, self.title, [item])
        except Forbidden as error:
            raise PackProblem(BLOCKED) from error
        except BadRequest as error:
            raise self._problem(error) from error
        log.info("telegram: made sticker set %s", name)
        return PackResult(name, f"your pack: {self.link(name)}", dropped)

    async def delete(self, names: list[str]) -> None:
        for name in names:
            try:
                await self.bot.delete_sticker_set(name)
            except BadRequest as error:  # already deleted by the user: nothing left to do
                log.info("telegram: sticker set %s not deleted (%s)", name, error.message)

    @staticmethod
    def _problem(error: BadRequest) -> PackProblem:
        reason = error.message.upper()
        if "PEER_ID_INVALID" in reason or "USER_NOT_FOUND" in reason or "CHAT NOT FOUND" in reason:
            return PackProblem(OPEN_A_CHAT)
        log.warning("telegram: the sticker pack refused a sticker: %s", error.message)
        return PackProblem("Telegram refused to add it to your pack; please try again later.")
