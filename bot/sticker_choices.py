"""🔄 Another and 🎨 Choose under a sticker: the buttons, and the contact sheet Choose shows.

A button names the generation it belongs to (its id in the store) and the user it was made for, so it
works after a restart and answers nobody else; a generation the store no longer has for that user
(forgotten, consent withdrawn) or one older than MAX_AGE is gone, and the user is told so."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from bot.behavior import StoredGeneration
from bot.chat import Button, button_action
from bot.identity import UserKey

ANOTHER, CHOOSE, PICK, PACK = "another", "choose", "pick", "pack"
# The emoji a sticker is filed under in a pack, by its mood.
MOOD_EMOJI = {
    "joy": "😄",
    "sadness": "😢",
    "anger": "😠",
    "fear": "😨",
    "surprise": "😮",
    "disgust": "🤢",
    "love": "🥰",
    "tired": "😴",
    "neutral": "🙂",
}
MAX_AGE = timedelta(days=30)
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
