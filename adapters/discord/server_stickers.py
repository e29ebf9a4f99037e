"""➕ Add to server: a sticker the bot made, as one of the server's own stickers. Offered only where both
the user and the bot may manage the server's expressions; the sticker is then the server's (a user's
/forget leaves it, as it does their messages there)."""

from __future__ import annotations

import io
import logging

import discord
import emoji as emoji_names
from PIL import Image

from bot.chat import PackProblem, PackResult
from bot.identity import UserKey

log = logging.getLogger(__name__)

SIDE = 320  # Discord's sticker size: PNG, 320×320, at most 512 KB
MAX_STICKERS = 30039  # Discord's error code: the server has no free sticker slot


def server_stickers(interaction: discord.Interaction) -> ServerStickers | None:
    """The server's stickers when the presser and the bot may both manage its expressions."""
    if interaction.guild is None:
        return None
    if not (interaction.permissions.manage_expressions and interaction.app_permissions.manage_expressions):
        return None
    return ServerStickers(interaction.guild)


class ServerStickers:
    label = "➕ Add to server"

    def __init__(self, guild: discord.Guild) -> None:
        self.guild = guild

    def link(self, name: str) -> str:
        return f"this server's stickers, as “{name}”"

    async def add(
        self, user: UserKey, sticker: bytes, emoji: str, keywords: list[str], packs: list[str]
    ) -> PackResult:
        name = sticker_name(keywords)
        tag = emoji_names.demojize(emoji, delimiters=("", "")) or "slightly_smiling_face"
        try:
            made = await self.guild.create_sticker(
                name=name,
                description=", ".join(keywords)[:100] or "made by pmg-stickers",
                emoji=tag,
                file=discord.File(io.BytesIO(as_png(sticker)), "sticker.png"),
                reason="➕ Add to server under a pmg-stickers sticker",
            )
        except discord.Forbidden as error:
            raise PackProblem("I may not add stickers to this server any more.") from error
        except discord.HTTPException as error:
            if error.code == MAX_STICKERS:
                raise PackProblem(
                    "This server has no free sticker slot; remove one and press ➕ again."
                ) from error
            log.warning("discord: the server refused a sticker: %s", error.text)
            raise PackProblem("Discord refused the sticker; please try again later.") from error
        return PackResult(made.name, self.link(made.name), personal=False)

    async def delete(self, names: list[str]) -> None:
        """Nothing: a server's stickers are the server's."""


def sticker_name(keywords: list[str]) -> str:
    """2–30 characters from the first keywords."""
    name = " ".join(keywords[:2])[:30].strip()
    return name if len(name) >= 2 else "my sticker"


def as_png(webp: bytes) -> bytes:
    buffer = io.BytesIO()
    Image.open(io.BytesIO(webp)).convert("RGBA").resize((SIDE, SIDE), Image.Resampling.LANCZOS).save(
        buffer, "PNG", optimize=True
    )
    return buffer.getvalue()
