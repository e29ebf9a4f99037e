"""What a user can do with a sticker once it is made: 🔄 Another and 🎨 Choose under it (the buttons,
the contact sheet), ➕ keep it in a pack, /mypack, and inline mode's answer from their own stickers.

A button names the generation it belongs to (its id in the store) and the user it was made for, so it
works after a restart and answers nobody else; a generation the store no longer has for that user
(forgotten, consent withdrawn) or one older than MAX_AGE is gone, and the user is told so."""

from __future__ import annotations

import asyncio
import io
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from bot.behavior import SentSticker, StoredGeneration
from bot.chat import Button, ChatPlatform, IncomingMessage, PackProblem, button_action
from bot.identity import UserKey
from bot.inline_stickers import rank
from pmg_engine.mood_data import MOOD_EMOJI

if TYPE_CHECKING:
    from bot.store import BehaviorStore

log = logging.getLogger(__name__)

ANOTHER, CHOOSE, PICK, PACK = "another", "choose", "pick", "pack"
MAX_AGE = timedelta(days=30)
INLINE_CANDIDATES = 50  # recent stickers ranked for an inline query
GONE = "That sticker is gone (too old, or its data was deleted); ask again with /sticker."


def sticker_buttons(
    generation_id: int, owner: UserKey, *, candidate: int, pack_label: str | None
) -> list[Button]:
    """What goes under every sticker the bot records for a user; ➕ where the platform keeps stickers."""
    buttons = [
        Button("🔄 Another", button_action(ANOTHER, str(generation_id), owner)),
        Button("🎨 Choose", button_action(CHOOSE, str(generation_id), owner)),
    ]
    if pack_label:
        buttons.append(Button(pack_label, button_action(PACK, f"{generation_id}.{candidate}", owner)))
    return buttons


def pick_buttons(generation: StoredGeneration, owner: UserKey) -> list[Button]:
    """1…N under the contact sheet, one per safe candidate, numbered as the sheet shows them."""
    return [
        Button(str(number), button_action(PICK, f"{generation.id}.{index}", owner))
        for number, index in enumerate(sorted(generation.candidate_images), start=1)
    ]


def parse_pick(choice: str) -> tuple[int, int] | None:
    """`<generation id>.<candidate index>` of a pick or pack button; None for anything else."""
    generation, _, index = choice.partition(".")
    return (int(generation), int(index)) if generation.isdigit() and index.isdigit() else None


def parse_generation(choice: str) -> int | None:
    """The generation id of an another/choose button; None for anything else."""
    return int(choice) if choice.isdigit() else None


def usable(generation: StoredGeneration | None, now: datetime | None = None) -> StoredGeneration | None:
    """The generation while its buttons may still act on it."""
    if generation is None or (now or datetime.now(UTC)) - generation.created_at > MAX_AGE:
        return None
    return generation


def contact_sheet(generation: StoredGeneration, images: list[bytes]) -> bytes:
    """The safe candidates (WebP, in index order) as one numbered PNG, each with its weight set w_p:w_t."""
    from PIL import Image

    from pmg_engine.contact_sheet import contact_sheet_png

    indices = sorted(generation.candidate_images)
    labels = [
        f"{number}  ·  {generation.weight_sets[index][0]:g}:{generation.weight_sets[index][1]:g}"
        for number, index in enumerate(indices, start=1)
    ]
    return contact_sheet_png([Image.open(io.BytesIO(webp)) for webp in images], labels)


class KeptStickers:
    """The use cases of a made sticker that need only the store (drawing another is the bot's)."""

    def __init__(self, store: BehaviorStore) -> None:
        self.store = store

    async def choose(self, platform: ChatPlatform, user: UserKey, chat: str, choice: str) -> None:
        """🎨 Every safe candidate of that sticker as one numbered sheet, a button per candidate."""
        generation = await self.generation(platform, user, chat, parse_generation(choice))
        if generation is None:
            return
        if not generation.candidate_images:
            await platform.send_text(chat, GONE)
            return
        images = [
            await self.store.read_blob(generation.candidate_images[i])
            for i in sorted(generation.candidate_images)
        ]
        sheet = await asyncio.to_thread(contact_sheet, generation, images)
        await platform.send_image(chat, sheet, "Pick the one you like:", pick_buttons(generation, user))

    async def pick(self, platform: ChatPlatform, user: UserKey, chat: str, choice: str) -> None:
        """One candidate from the sheet, sent as the sticker; the choice (and its weight set) recorded."""
        from bot.stickers import sticker_files

        found = await self._candidate(platform, user, chat, choice)
        if found is None:
            return
        generation, index, webp = found
        files = await asyncio.to_thread(sticker_files, webp)
        buttons = sticker_buttons(
            generation.id, user, candidate=index, pack_label=platform.packs.label if platform.packs else None
        )
        file_id = await platform.send_sticker(chat, files.webp, files.png, buttons)
        weights = generation.weight_sets[index]
        await self.store.record_feedback(
            user, generation.id, "chosen", chat=chat, candidate_index=index, weights=weights, file_id=file_id
        )

    async def add_to_pack(self, platform: ChatPlatform, user: UserKey, chat: str, choice: str) -> None:
        """➕ The sticker into the user's personal pack (a new one when they have none, it is full or they
        deleted it), filed under its mood's emoji with its keywords; the reply links the pack."""
        if platform.packs is None:
            await platform.send_text(chat, "I can't keep stickers for you here (packs live on Telegram).")
            return
        found = await self._candidate(platform, user, chat, choice)
        if found is None:
            return
        generation, index, webp = found
        emoji = MOOD_EMOJI.get(generation.mood or "", "🙂")
        keywords = [*generation.preference_keywords, *generation.target_keywords]
        try:
            added = await platform.packs.add(user, webp, emoji, keywords, await self.store.packs(user))
        except PackProblem as problem:
            await platform.send_text(chat, str(problem))
            return
        if added.dropped:
            await self.store.pack_dropped(user, added.dropped)
        if added.personal:
            await self.store.pack_added(user, added.name)
        weights = generation.weight_sets[index]
        await self.store.record_feedback(
            user, generation.id, "pack", chat=chat, candidate_index=index, weights=weights
        )
        note = " (your last pack was gone, so I started a new one)" if added.dropped else ""
        await platform.send_text(chat, f"Added to {added.where}{note}.")

    @staticmethod
    async def delete_packs(platform: ChatPlatform, names: list[str]) -> int:
        """The packs the bot made for a user who /forget-s; their rows are gone already, so a failure
        here is logged (with the error id) and the user still hears that their data is deleted."""
        if not names or platform.packs is None:
            return 0
        try:
            await platform.packs.delete(names)
        except Exception:
            log.exception(
                "the sticker packs of a forgotten user were not all deleted (error %s)", uuid.uuid4().hex[:8]
            )
            return 0
        return len(names)

    async def inline_stickers(self, user: UserKey, text: str) -> list[SentSticker]:
        """Inline mode: the user's own recent stickers ranked for `text`, from the store alone (no
        drawing: an inline answer has seconds); none for a user without consent to personalize."""
        return rank(await self.store.sent_stickers(user, INLINE_CANDIDATES), text)

    async def inline_chosen(self, user: UserKey, result_id: str) -> None:
        """A sticker the user sent through inline mode (result ids start with its generation's id)."""
        generation_id = result_id.split("-", 1)[0]
        if generation_id.isdigit():
            await self.store.record_feedback(user, int(generation_id), "inline")

    async def mypack(self, platform: ChatPlatform, message: IncomingMessage, _: str) -> None:
        """Links to the packs the bot made for the user."""
        names = await self.store.packs(message.user)
        if platform.packs is None:
            await platform.send_text(message.chat, "Personal packs live on Telegram.")
        elif not names:
            await platform.send_text(
                message.chat, "No pack yet: press ➕ My pack under a sticker I made you."
            )
        else:
            links = "\n".join(platform.packs.link(name) for name in names)
            await platform.send_text(message.chat, f"Your stickers:\n{links}")

    async def _candidate(
        self, platform: ChatPlatform, user: UserKey, chat: str, choice: str
    ) -> tuple[StoredGeneration, int, bytes] | None:
        """The generation and candidate a pick/pack button names, with its image; None (the user told)
        when it is gone."""
        picked = parse_pick(choice)
        generation = await self.generation(platform, user, chat, picked[0] if picked else None)
        if generation is None or picked is None:
            return None
        if picked[1] not in generation.candidate_images:
            await platform.send_text(chat, GONE)
            return None
        return generation, picked[1], await self.store.read_blob(generation.candidate_images[picked[1]])

    async def generation(
        self, platform: ChatPlatform, user: UserKey, chat: str, generation_id: int | None
    ) -> StoredGeneration | None:
        """The user's generation a button names, or None after telling them it is gone."""
        generation = usable(await self.store.generation(user, generation_id)) if generation_id else None
        if generation is None:
            await platform.send_text(chat, GONE)
        return generation
