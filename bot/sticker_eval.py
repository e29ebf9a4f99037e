"""`pmg eval personas --stickers`: the whole pipeline for each labelled user, history in a scratch store."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.identity import Platform, UserKey
from bot.service import StickerBackend
from bot.stickers import StickerJob, make_sticker

if TYPE_CHECKING:
    from PIL import Image

    from bot.sticker_engine import EngineOutcome, EngineRequest
    from pmg_engine.evaluation import Persona


async def evaluate_persona_stickers(
    service: StickerBackend[EngineRequest, EngineOutcome],
    job: StickerJob,
    personas: list[Persona],
    *,
    alpha: float,
    progress: Callable[[int], None] = lambda done: None,
) -> tuple[dict[str, Any], list[tuple[Image.Image, str]]]:
    """The report (stage 1 rates + sticker_character_rate, sticker_mood_rate) and each chosen sticker
    with its user id, for a contact sheet. The scratch store is deleted afterwards."""
    from bot.composition import scratch_store
    from pmg_engine.evaluation import stage1_row, sticker_shows, sticker_summary

    rows: list[dict[str, Any]] = []
    chosen_stickers = []
    with tempfile.TemporaryDirectory(prefix="pmg-eval-") as scratch:
        async with scratch_store(Path(scratch)) as store:
            for done, persona in enumerate(personas, start=1):
                user = UserKey.of(Platform.CONSOLE, persona.id)
                chat = f"eval-{persona.id}"  # message ids are unique per chat: one chat per user
                await store.set_consent(user, personalize=True)  # labelled data, kept only for this run
                for index, sticker in enumerate(persona.behaviors.stickers):
                    await store.record_sticker_use(user, chat, sticker, message_id=index)
                for message in persona.behaviors.messages:
                    await store.record_message(user, chat, message)
                reply = await make_sticker(
                    store, service, job, user, persona.behaviors.conversation, alpha=alpha
                )
                row = stage1_row(persona, reply.understanding, reply.seconds)
                result = reply.result
                if result.chosen is None:
                    row["sticker_character"] = row["sticker_mood"] = False
                else:
                    chosen = result.candidates[result.chosen]
                    row["sticker_character"], row["sticker_mood"] = sticker_shows(
                        chosen, result.request, persona
                    )
                    row["sticker"] = chosen.summary()
                    chosen_stickers.append((chosen.candidate.image, persona.id))
                rows.append(row)
                progress(done)
    return sticker_summary(rows), chosen_stickers
