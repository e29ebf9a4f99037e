"""The behavior store's queries about the stickers it made: one generation for its buttons, what users
did with them (feedback), the sent stickers inline mode offers, their packs, and the choices per-user α
and `pmg eval feedback` read. Every write checks consent in its own transaction, like the rest."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from sqlalchemy import delete, select, update

from adapters.store.tables import (
    CandidateImage,
    Chat,
    Generation,
    StickerFeedback,
    StickerPack,
    User,
    user_named,
    utc_now,
)
from bot.behavior import FeedbackEvent, FeedbackKind, SentSticker, StoredGeneration
from bot.identity import UserKey
from bot.text_input import clean_text

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    from sqlalchemy.ext.asyncio import AsyncSession

    from bot.identity import Platform


class StoreParts(Protocol):
    """What these queries use of SqlBehaviorStore (mypy's mixin pattern: a protocol as the self-type)."""

    def read_transaction(self) -> AbstractAsyncContextManager[AsyncSession]: ...
    def write_transaction(self) -> AbstractAsyncContextManager[AsyncSession]: ...
    async def _consenting_user(
        self, session: AsyncSession, user: UserKey, *, display_name: str | None = None
    ) -> tuple[int, bool] | None: ...
    async def _user_id(self, session: AsyncSession, user: UserKey) -> int | None: ...
    async def _upsert_chat(self, session: AsyncSession, platform: Platform, chat: str) -> int: ...


FILE_ID_CHARS = 256  # a platform's file id, as stored


class StickerQueries:
    """Part of SqlBehaviorStore (its transactions and user lookups), kept apart for length."""

    async def generation(self: StoreParts, user: UserKey, generation_id: int) -> StoredGeneration | None:
        """The user's own generation, while they consent to personalization; None for anything else
        (another user's, deleted, forgotten, consent withdrawn)."""
        async with self.read_transaction() as session:
            row = (
                await session.execute(
                    select(Generation, Chat.external_id)
                    .join(User, User.id == Generation.user_id)
                    .outerjoin(Chat, Chat.id == Generation.chat_id)
                    .where(
                        Generation.id == generation_id,
                        user_named(user),
                        User.consent_personalize,
                    )
                )
            ).one_or_none()
            if row is None:
                return None
            generation, chat = row
            images = await session.execute(
                select(CandidateImage.candidate_index, CandidateImage.sha256).where(
                    CandidateImage.generation_id == generation_id
                )
            )
            return StoredGeneration(
                id=generation.id,
                chat=chat,
                request_text=generation.request_text,
                preference_keywords=list(generation.preference_keywords),
                target_keywords=list(generation.target_keywords),
                mood=generation.mood,
                weight_sets=[(float(p), float(t)) for p, t in generation.weight_sets],
                candidates=list(generation.candidates),
                chosen_index=generation.chosen_index,
                alpha=generation.alpha,
                candidate_images={index: sha256 for index, sha256 in images.all()},
                created_at=generation.created_at,
            )

    async def record_feedback(
        self: StoreParts,
        user: UserKey,
        generation_id: int,
        kind: FeedbackKind,
        *,
        chat: str | None = None,
        candidate_index: int | None = None,
        weights: tuple[float, float] | None = None,
        file_id: str | None = None,
    ) -> bool:
        """What the user did with one of their generations; stored only while they consent to
        personalization and the generation is theirs (checked in this write's transaction).
        `file_id`: the platform's id of the sticker as sent (inline mode offers it again)."""
        async with self.write_transaction() as session:
            found = await self._consenting_user(session, user)
            owned = (
                found is not None
                and (
                    await session.execute(
                        select(Generation.id).where(
                            Generation.id == generation_id, Generation.user_id == found[0]
                        )
                    )
                ).scalar_one_or_none()
            )
            if found is None or owned is None:
                return False
            chat_id = await self._upsert_chat(session, user.platform, chat) if chat else None
            session.add(
                StickerFeedback(
                    user_id=found[0],
                    chat_id=chat_id,
                    generation_id=generation_id,
                    kind=kind,
                    candidate_index=candidate_index,
                    weights=list(weights) if weights else None,
                    file_id=clean_text(file_id, FILE_ID_CHARS).text if file_id else None,
                    created_at=utc_now(),
                )
            )
            return True

    async def sent_stickers(self: StoreParts, user: UserKey, limit: int) -> list[SentSticker]:
        """The user's latest stickers with a platform file id, newest first, one per file."""
        async with self.read_transaction() as session:
            rows = await session.execute(
                select(StickerFeedback.generation_id, StickerFeedback.file_id, Generation)
                .join(User, User.id == StickerFeedback.user_id)
                .join(Generation, Generation.id == StickerFeedback.generation_id)
                .where(
                    user_named(user),
                    User.consent_personalize,
                    StickerFeedback.file_id.is_not(None),
                )
                .order_by(StickerFeedback.id.desc())
                .limit(4 * limit)
            )
            found: dict[str, SentSticker] = {}
            for generation_id, file_id, generation in rows.all():
                assert file_id is not None  # selected for it
                keywords = [*generation.preference_keywords, *generation.target_keywords]
                found.setdefault(file_id, SentSticker(generation_id, file_id, generation.mood, keywords))
            return list(found.values())[:limit]

    async def packs(self: StoreParts, user: UserKey) -> list[str]:
        """The names of the packs the bot made for the user, oldest first."""
        async with self.read_transaction() as session:
            user_id = await self._user_id(session, user)
            rows = await session.execute(
                select(StickerPack.name).where(StickerPack.user_id == user_id).order_by(StickerPack.id)
            )
            return list(rows.scalars())

    async def pack_added(self: StoreParts, user: UserKey, name: str) -> bool:
        """One more sticker in the user's pack `name` (made now if new); only with consent to personalize."""
        async with self.write_transaction() as session:
            found = await self._consenting_user(session, user)
            if found is None:
                return False
            updated = await session.execute(
                update(StickerPack)
                .where(StickerPack.user_id == found[0], StickerPack.name == name)
                .values(stickers=StickerPack.stickers + 1)
            )
            if not updated.rowcount:  # type: ignore[attr-defined]
                session.add(StickerPack(user_id=found[0], name=name, stickers=1, created_at=utc_now()))
            return True

    async def pack_dropped(self: StoreParts, user: UserKey, name: str) -> None:
        """The pack is gone on the platform (the user deleted it): forget its name."""
        async with self.write_transaction() as session:
            user_id = await self._user_id(session, user)
            await session.execute(
                delete(StickerPack).where(StickerPack.user_id == user_id, StickerPack.name == name)
            )

    async def chosen_weights(self: StoreParts, user: UserKey) -> list[tuple[float, float]]:
        """The weight sets of the candidates the user chose or added to a pack, oldest first (none
        without consent to personalize)."""
        async with self.read_transaction() as session:
            rows = await session.execute(
                select(StickerFeedback.weights)
                .join(User, User.id == StickerFeedback.user_id)
                .where(
                    user_named(user),
                    User.consent_personalize,
                    StickerFeedback.kind.in_(("chosen", "pack")),
                    StickerFeedback.weights.is_not(None),
                )
                .order_by(StickerFeedback.id)
            )
            return [(float(w_p), float(w_t)) for w_p, w_t in rows.scalars()]

    async def feedback_events(self: StoreParts) -> list[FeedbackEvent]:
        """Every feedback row of every user, with what its generation chose and the α it used (for
        `pmg eval feedback`: counts and rates, never text)."""
        async with self.read_transaction() as session:
            rows = await session.execute(
                select(
                    StickerFeedback.user_id,
                    StickerFeedback.kind,
                    StickerFeedback.candidate_index,
                    StickerFeedback.weights,
                    Generation.chosen_index,
                    Generation.alpha,
                )
                .join(Generation, Generation.id == StickerFeedback.generation_id)
                .order_by(StickerFeedback.id)
            )
            return [
                FeedbackEvent(
                    user=user_id,
                    kind=kind,
                    candidate_index=index,
                    weights=(float(weights[0]), float(weights[1])) if weights else None,
                    z_pick=z_pick,
                    alpha=alpha,
                )
                for user_id, kind, index, weights, z_pick, alpha in rows.all()
            ]
