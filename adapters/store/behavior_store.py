"""The SQLite behavior store: what users did, what they consented to, what the bot made."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Select, delete, func, select, union, update
from sqlalchemy.dialects.sqlite import insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from adapters.store import schema
from adapters.store.blob_files import BlobFiles
from adapters.store.database import WRITE, create_engine
from adapters.store.errors import BlobTooLargeError
from adapters.store.tables import (
    Base,
    Blob,
    Chat,
    Generation,
    Message,
    PreferenceCache,
    StickerUse,
    TrainingRun,
    User,
    utc_now,
)
from adapters.store.text_input import clean_text
from bot.behavior import (
    Behavior,
    CachedPreferences,
    Consent,
    GenerationRecord,
    Recorded,
    TrainingExample,
)
from bot.identity import Platform, UserKey
from pmg_engine.behaviors import StickerSent

log = logging.getLogger(__name__)

NAME_CHARS = 256  # display names, chat titles, sticker names and set titles
ID_CHARS = 64  # platform ids
EXPORT_FORMAT = "pmg-stickers user export, version 1"
USER_TABLES = (("messages", Message), ("sticker_uses", StickerUse), ("generations", Generation))


async def _behavior_changed(session: AsyncSession, user_ids: Iterable[int]) -> None:
    """The users' behavior changed: preference keywords cached before it are stale."""
    await session.execute(
        update(User).where(User.id.in_(set(user_ids))).values(behavior_seq=User.behavior_seq + 1)
    )


def _short(value: str | int | None, limit: int = NAME_CHARS) -> str | None:
    """Platform-supplied labels: cleaned and cut without ceremony."""
    return None if value is None else clean_text(str(value), limit).text


async def _values(session: AsyncSession, *selects: Select) -> set[Any]:
    """The non-null values of the union of one-column selects."""
    return {value for value in (await session.execute(union(*selects))).scalars() if value is not None}


def _exported(row: Base, chats: dict[int, str]) -> dict[str, Any]:
    """A row as JSON-ready data: internal ids dropped or named by the platform, times in ISO 8601."""
    data: dict[str, Any] = {}
    for column in row.__table__.columns:
        value = getattr(row, column.key)
        if column.key == "chat_id":
            data["chat"] = chats.get(value)
        elif column.key not in ("id", "user_id"):
            data[column.key] = value.isoformat() if isinstance(value, datetime) else value
    return data


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


class SqliteBehaviorStore:
    """Async API over one SQLite file and a folder of content-addressed blobs."""

    def __init__(
        self, engine: AsyncEngine, blobs: BlobFiles, *, max_text_chars: int, max_blob_bytes: int
    ) -> None:
        self.engine = engine
        self.blobs = blobs
        self.max_text_chars = max_text_chars
        self.max_blob_bytes = max_blob_bytes
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    @classmethod
    async def open(
        cls,
        url: str,
        blob_dir: Path,
        *,
        max_text_chars: int = 4096,
        max_blob_bytes: int = 8 * 1024 * 1024,
    ) -> SqliteBehaviorStore:
        """Open the store, applying pending migrations first (refusing foreign or newer files)."""
        await schema.upgrade(url)
        return cls(
            create_engine(url),
            BlobFiles(blob_dir),
            max_text_chars=max_text_chars,
            max_blob_bytes=max_blob_bytes,
        )

    async def close(self) -> None:
        await self.engine.dispose()

    async def __aenter__(self) -> SqliteBehaviorStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- transactions ----------------------------------------------------------------

    @asynccontextmanager
    async def write_transaction(self) -> AsyncIterator[AsyncSession]:
        """A transaction that takes SQLite's write lock first (BEGIN IMMEDIATE): no lost updates."""
        async with self._sessions() as session, session.begin():
            await session.connection(execution_options=WRITE)
            yield session

    @asynccontextmanager
    async def read_transaction(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session, session.begin():
            yield session

    # --- users and consent -------------------------------------------------------------

    async def _upsert_user(self, session: AsyncSession, user: UserKey, display_name: str | None) -> int:
        now = utc_now()
        statement = (
            insert(User)
            .values(
                platform=user.platform.value,
                external_id=_short(user.external_id, ID_CHARS),
                display_name=_short(display_name),
                created_at=now,
                last_seen_at=now,
            )
            .on_conflict_do_update(
                index_elements=[User.platform, User.external_id],
                set_={
                    "last_seen_at": now,
                    "display_name": func.coalesce(_short(display_name), User.display_name),
                },
            )
            .returning(User.id)
        )
        return (await session.execute(statement)).scalar_one()

    async def _user_id(self, session: AsyncSession, user: UserKey) -> int | None:
        statement = select(User.id).where(
            User.platform == user.platform.value, User.external_id == user.external_id
        )
        return (await session.execute(statement)).scalar_one_or_none()

    async def _chat_id(self, session: AsyncSession, platform: Platform, chat: str) -> int | None:
        statement = select(Chat.id).where(
            Chat.platform == platform.value, Chat.external_id == _short(chat, ID_CHARS)
        )
        return (await session.execute(statement)).scalar_one_or_none()

    async def _upsert_chat(self, session: AsyncSession, platform: Platform, chat: str) -> int:
        statement = (
            insert(Chat)
            .values(platform=platform.value, external_id=_short(chat, ID_CHARS), created_at=utc_now())
            .on_conflict_do_update(
                index_elements=[Chat.platform, Chat.external_id], set_={"platform": platform.value}
            )
            .returning(Chat.id)
        )
        return (await session.execute(statement)).scalar_one()

    async def set_consent(
        self,
        user: UserKey,
        *,
        personalize: bool | None = None,
        train: bool | None = None,
        display_name: str | None = None,
    ) -> Consent:
        """Change the given flags (None leaves one as it is) and return the consent now in force."""
        async with self.write_transaction() as session:
            user_id = await self._upsert_user(session, user, display_name)
            changes: dict[str, Any] = {"consent_updated_at": utc_now()}
            if personalize is not None:
                changes["consent_personalize"] = personalize
            if train is not None:
                changes["consent_train"] = train
            await session.execute(update(User).where(User.id == user_id).values(**changes))
            row = (
                await session.execute(
                    select(User.consent_personalize, User.consent_train).where(User.id == user_id)
                )
            ).one()
        return Consent(personalize=row.consent_personalize, train=row.consent_train)

    async def get_consent(self, user: UserKey) -> Consent:
        """The user's consent; a user never seen has consented to nothing."""
        async with self.read_transaction() as session:
            row = (
                await session.execute(
                    select(User.consent_personalize, User.consent_train).where(
                        User.platform == user.platform.value, User.external_id == user.external_id
                    )
                )
            ).one_or_none()
        return Consent(row.consent_personalize, row.consent_train) if row else Consent()

    # --- behaviors -----------------------------------------------------------------------

    async def record_message(
        self,
        user: UserKey,
        chat: str,
        text: str | bytes,
        *,
        message_id: str | int | None = None,
        sent_at: datetime | None = None,
        display_name: str | None = None,
    ) -> Recorded:
        """Store one message; over-long text is kept as a flagged prefix, a repeated id is a no-op."""
        clean = clean_text(text, self.max_text_chars)
        if clean.truncated:
            log.warning(
                "message from %s cut from %d to %d characters", user, clean.original_length, len(clean.text)
            )
        async with self.write_transaction() as session:
            user_id = await self._upsert_user(session, user, display_name)
            chat_id = await self._upsert_chat(session, user.platform, chat)
            row = {
                "user_id": user_id,
                "chat_id": chat_id,
                "platform_message_id": _short(message_id, ID_CHARS),
                "text": clean.text,
                "text_truncated": clean.truncated,
                "original_length": clean.original_length,
                "created_at": sent_at or utc_now(),
            }
            return await self._insert_behavior(
                session,
                Message,
                row,
                user_id,
                {"chat_id": chat_id, "platform_message_id": row["platform_message_id"]},
                truncated=clean.truncated,
            )

    async def record_sticker_use(
        self,
        user: UserKey,
        chat: str,
        sticker: StickerSent,
        *,
        message_id: str | int | None = None,
        item_index: int = 0,
        sent_at: datetime | None = None,
        display_name: str | None = None,
        image: bytes | None = None,
        image_mime: str = "image/webp",
    ) -> Recorded:
        """Store one sticker/emoji use, and its image as a blob when given (size-capped)."""
        image_sha256 = None
        if image is not None:
            self._check_size(len(image), what="sticker image")
            image_sha256 = self.blobs.write(image)
        async with self.write_transaction() as session:
            user_id = await self._upsert_user(session, user, display_name)
            chat_id = await self._upsert_chat(session, user.platform, chat)
            if image_sha256:
                await self._insert_blob_row(session, image_sha256, len(image or b""), image_mime)
            row = {
                "user_id": user_id,
                "chat_id": chat_id,
                "platform_message_id": _short(message_id, ID_CHARS),
                "item_index": item_index,
                "platform_sticker_id": _short(sticker.platform_sticker_id),
                "emoji": _short(sticker.emoji, 64),
                "set_title": _short(sticker.set_title),
                "name": _short(sticker.name),
                "image_sha256": image_sha256,
                "created_at": sent_at or utc_now(),
            }
            natural_key = {
                "chat_id": chat_id,
                "platform_message_id": row["platform_message_id"],
                "item_index": item_index,
            }
            return await self._insert_behavior(session, StickerUse, row, user_id, natural_key)

    async def edit_message(self, user: UserKey, chat: str, message_id: str | int, text: str) -> bool:
        """The user edited a message: the stored text follows (an unknown message is not created)."""
        clean = clean_text(text, self.max_text_chars)
        async with self.write_transaction() as session:
            user_id = await self._user_id(session, user)
            chat_id = await self._chat_id(session, user.platform, chat)
            if user_id is None or chat_id is None:
                return False
            edited = await session.execute(
                update(Message)
                .where(
                    Message.user_id == user_id,
                    Message.chat_id == chat_id,
                    Message.platform_message_id == _short(message_id, ID_CHARS),
                )
                .values(
                    text=clean.text, text_truncated=clean.truncated, original_length=clean.original_length
                )
            )
            if not edited.rowcount:  # type: ignore[attr-defined]
                return False
            await _behavior_changed(session, {user_id})
        return True

    async def delete_message(self, platform: Platform, chat: str, message_id: str | int) -> int:
        """A message was deleted on the platform: its text and sticker uses go too (images no longer
        used by anyone with them). Returns how many rows went."""
        async with self.write_transaction() as session:
            chat_id = await self._chat_id(session, platform, chat)
            if chat_id is None:
                return 0
            where = {"chat_id": chat_id, "platform_message_id": _short(message_id, ID_CHARS)}
            owners = await _values(
                session, *(select(table.user_id).filter_by(**where) for table in (Message, StickerUse))
            )
            images = await _values(session, select(StickerUse.image_sha256).filter_by(**where))
            removed = 0
            for table in (Message, StickerUse):
                removed += (await session.execute(delete(table).filter_by(**where))).rowcount  # type: ignore[attr-defined]
            await _behavior_changed(session, owners)
            orphans = await self._unreferenced_blobs(session, images - {None})
            await session.execute(delete(Blob).where(Blob.sha256.in_(orphans)))
        for sha256 in orphans:
            self.blobs.delete(sha256)
        return removed

    async def _insert_behavior(
        self,
        session: AsyncSession,
        table: type[Message] | type[StickerUse],
        row: dict[str, Any],
        user_id: int,
        natural_key: dict[str, Any],
        *,
        truncated: bool = False,
    ) -> Recorded:
        inserted = (
            await session.execute(insert(table).values(**row).on_conflict_do_nothing().returning(table.id))
        ).scalar_one_or_none()
        if inserted is None:  # the platform delivered this one before
            existing = select(table.id).filter_by(**natural_key)
            return Recorded(id=(await session.execute(existing)).scalar_one(), created=False)
        await _behavior_changed(session, {user_id})
        return Recorded(id=inserted, created=True, truncated=truncated)

    async def recent_history(self, user: UserKey, n: int, *, chat: str | None = None) -> list[Behavior]:
        """The user's last `n` messages and sticker uses (in one chat if given), oldest first."""
        async with self.read_transaction() as session:
            user_id = await self._user_id(session, user)
            if user_id is None:
                return []
            return await self._history(session, user_id, limit=n, chat=chat)

    async def _history(
        self,
        session: AsyncSession,
        user_id: int,
        *,
        limit: int,
        chat: str | None = None,
        before: tuple[datetime, int] | None = None,
    ) -> list[Behavior]:
        def newest(statement: Select, table: type[Message] | type[StickerUse]) -> Select:
            statement = statement.join(Chat, Chat.id == table.chat_id).where(table.user_id == user_id)
            if chat is not None:
                statement = statement.where(Chat.external_id == chat)
            if before is not None:
                statement = statement.where(table.created_at <= before[0])
            return statement.order_by(table.created_at.desc(), table.id.desc()).limit(limit)

        messages = await session.execute(newest(select(Message, Chat.external_id), Message))
        stickers = await session.execute(newest(select(StickerUse, Chat.external_id), StickerUse))
        items = [
            Behavior("message", chat_external, message.created_at, text=message.text)
            for message, chat_external in messages
        ]
        items += [
            Behavior(
                "sticker",
                chat_external,
                use.created_at,
                sticker=StickerSent(use.emoji, use.name, use.set_title, use.platform_sticker_id),
                image_sha256=use.image_sha256,
            )
            for use, chat_external in stickers
            if before is None or (use.created_at, use.id) < before
        ]
        items.sort(key=lambda item: item.at)
        return items[-limit:]

    # --- preference cache ----------------------------------------------------------------

    async def behavior_watermark(self, user: UserKey) -> int:
        """A number that changes whenever a behavior of the user is stored."""
        async with self.read_transaction() as session:
            statement = select(User.behavior_seq).where(
                User.platform == user.platform.value, User.external_id == user.external_id
            )
            return (await session.execute(statement)).scalar_one_or_none() or 0

    async def cached_preferences(self, user: UserKey) -> CachedPreferences | None:
        async with self.read_transaction() as session:
            statement = (
                select(PreferenceCache)
                .join(User, User.id == PreferenceCache.user_id)
                .where(User.platform == user.platform.value, User.external_id == user.external_id)
            )
            cached = (await session.execute(statement)).scalar_one_or_none()
        if cached is None:
            return None
        return CachedPreferences(list(cached.keywords), cached.watermark, cached.model)

    async def store_preferences(self, user: UserKey, preferences: CachedPreferences) -> None:
        async with self.write_transaction() as session:
            user_id = await self._upsert_user(session, user, None)
            values = {
                "watermark": preferences.watermark,
                "keywords": list(preferences.keywords),
                "model": preferences.model,
                "updated_at": utc_now(),
            }
            await session.execute(
                insert(PreferenceCache)
                .values(user_id=user_id, **values)
                .on_conflict_do_update(index_elements=[PreferenceCache.user_id], set_=values)
            )

    # --- blobs ---------------------------------------------------------------------------

    def _check_size(self, size: int, *, what: str) -> None:
        if size > self.max_blob_bytes:
            raise BlobTooLargeError(
                f"{what} of {size} bytes is over the limit of {self.max_blob_bytes} (PMG_MAX_BLOB_BYTES)"
            )

    async def _insert_blob_row(self, session: AsyncSession, sha256: str, size: int, mime: str) -> None:
        row = {"sha256": sha256, "size": size, "mime": _short(mime, 64), "created_at": utc_now()}
        await session.execute(insert(Blob).values(**row).on_conflict_do_nothing())

    async def put_blob(self, data: bytes, mime: str) -> str:
        """Store bytes produced by the bot itself (generated stickers, checkpoints); returns the sha256."""
        sha256 = self.blobs.write(data)
        async with self.write_transaction() as session:
            await self._insert_blob_row(session, sha256, len(data), mime)
        return sha256

    def read_blob(self, sha256: str) -> bytes:
        return self.blobs.read(sha256)

    # --- generations and training runs ----------------------------------------------------

    async def record_generation(
        self, record: GenerationRecord, *, image: bytes | None = None, image_mime: str = "image/webp"
    ) -> int:
        """Store one generation, and the chosen sticker's image as a blob when given."""
        chosen = record.chosen_sha256
        if image is not None:
            chosen = self.blobs.write(image)
        async with self.write_transaction() as session:
            user_id = await self._upsert_user(session, record.user, None)
            chat_id = (
                await self._upsert_chat(session, record.user.platform, record.chat) if record.chat else None
            )
            if image is not None and chosen:
                await self._insert_blob_row(session, chosen, len(image), image_mime)
            generation = Generation(
                user_id=user_id,
                chat_id=chat_id,
                request_text=clean_text(record.request_text, self.max_text_chars).text,
                preference_keywords=list(record.preference_keywords),
                target_keywords=list(record.target_keywords),
                mood=record.mood,
                weight_sets=[list(pair) for pair in record.weight_sets],
                candidates=list(record.candidates),
                chosen_index=record.chosen_index,
                alpha=record.alpha,
                notes=list(record.notes),
                chosen_sha256=chosen,
                profile=record.profile,
                models=dict(record.models),
                checkpoint_version=record.checkpoint_version,
                timings=dict(record.timings),
                status=record.status,
                error=record.error,
                created_at=utc_now(),
            )
            session.add(generation)
            await session.flush()
            return generation.id

    async def start_training_run(self, version: str, config: dict[str, Any]) -> int:
        async with self.write_transaction() as session:
            run = TrainingRun(
                version=version, status="running", config=config, metrics={}, started_at=utc_now()
            )
            session.add(run)
            await session.flush()
            return run.id

    async def finish_training_run(
        self,
        run_id: int,
        *,
        status: str,
        metrics: dict[str, Any],
        checkpoint_sha256: str | None = None,
        promoted: bool = False,
        error: str | None = None,
    ) -> None:
        async with self.write_transaction() as session:
            if promoted:  # one promoted checkpoint at a time
                await session.execute(update(TrainingRun).values(promoted=False))
            await session.execute(
                update(TrainingRun)
                .where(TrainingRun.id == run_id)
                .values(
                    status=status,
                    metrics=metrics,
                    checkpoint_sha256=checkpoint_sha256,
                    promoted=promoted,
                    error=error,
                    finished_at=utc_now(),
                )
            )

    async def promoted_checkpoint(self) -> tuple[str, str] | None:
        """(version, checkpoint sha256) of the checkpoint in service, if any."""
        async with self.read_transaction() as session:
            row = (
                await session.execute(
                    select(TrainingRun.version, TrainingRun.checkpoint_sha256).where(
                        TrainingRun.promoted, TrainingRun.checkpoint_sha256.is_not(None)
                    )
                )
            ).first()
        return (row.version, row.checkpoint_sha256) if row else None

    # --- training examples ---------------------------------------------------------------

    async def iter_training_examples(self, *, history_limit: int = 10) -> AsyncIterator[TrainingExample]:
        """One example per user who consented to training and has ≥ 2 stickers with images."""
        async with self.read_transaction() as session:
            users = (
                await session.execute(
                    select(User.id, User.platform, User.external_id)
                    .where(User.consent_train)
                    .order_by(User.id)
                )
            ).all()
        for user_id, platform, external_id in users:
            async with self.read_transaction() as session:
                with_image = (
                    await session.execute(
                        select(StickerUse.id, StickerUse.created_at, StickerUse.image_sha256)
                        .where(StickerUse.user_id == user_id, StickerUse.image_sha256.is_not(None))
                        .order_by(StickerUse.created_at.desc(), StickerUse.id.desc())
                        .limit(2)
                    )
                ).all()
                if len(with_image) < 2:
                    continue
                last_id, last_at, target = with_image[0]
                assert target is not None  # selected for it
                history = await self._history(
                    session, user_id, limit=history_limit, before=(last_at, last_id)
                )
            # Messages sent at the same instant as the target still count as context.
            yield TrainingExample(UserKey(Platform(platform), external_id), history, target)

    # --- privacy: export and forget ---------------------------------------------------------

    async def export_user(self, user: UserKey) -> dict[str, Any]:
        """Everything stored about the user, as JSON-ready data (blobs by hash, size and type)."""
        async with self.read_transaction() as session:
            row = (
                await session.execute(
                    select(User).where(
                        User.platform == user.platform.value, User.external_id == user.external_id
                    )
                )
            ).scalar_one_or_none()
            if row is None:
                return {"format": EXPORT_FORMAT, "user": None}
            chats = {chat.id: chat.external_id for chat in (await session.execute(select(Chat))).scalars()}
            exported: dict[str, Any] = {
                "format": EXPORT_FORMAT,
                "exported_at": _iso(datetime.now(UTC)),
                "user": _exported(row, chats),
            }
            for name, table in USER_TABLES:
                rows = (await session.execute(select(table).where(table.user_id == row.id))).scalars()
                exported[name] = [_exported(item, chats) for item in rows]
            cache = await session.get(PreferenceCache, row.id)
            exported["preference_keywords"] = cache.keywords if cache else []
            hashes = {use["image_sha256"] for use in exported["sticker_uses"]}
            hashes |= {generation["chosen_sha256"] for generation in exported["generations"]}
            blobs = (await session.execute(select(Blob).where(Blob.sha256.in_(hashes - {None})))).scalars()
            exported["blobs"] = [_exported(blob, chats) for blob in blobs]
            return exported

    async def forget_user(self, user: UserKey) -> dict[str, int]:
        """Delete every row and file of the user, and nothing of anyone else; returns what went."""
        report = dict.fromkeys(("users", *(name for name, _ in USER_TABLES), "chats", "blobs"), 0)
        async with self.write_transaction() as session:
            user_id = await self._user_id(session, user)
            if user_id is None:
                return report
            for name, table in USER_TABLES:
                count = select(func.count()).where(table.user_id == user_id)
                report[name] = (await session.execute(count)).scalar_one()
            touched_chats = await _values(
                session, *(select(table.chat_id).where(table.user_id == user_id) for _, table in USER_TABLES)
            )
            user_blobs = await _values(
                session,
                select(StickerUse.image_sha256).where(StickerUse.user_id == user_id),
                select(Generation.chosen_sha256).where(Generation.user_id == user_id),
            )
            await session.execute(delete(User).where(User.id == user_id))  # cascades to the user's rows
            emptied_chats = await self._unused_chats(session, touched_chats)
            await session.execute(delete(Chat).where(Chat.id.in_(emptied_chats)))
            orphans = await self._unreferenced_blobs(session, user_blobs)
            await session.execute(delete(Blob).where(Blob.sha256.in_(orphans)))
        for sha256 in orphans:
            self.blobs.delete(sha256)
        await self._checkpoint_wal()
        report |= {"users": 1, "chats": len(emptied_chats), "blobs": len(orphans)}
        log.info("forgot %s: %s", user, report)
        return report

    async def _unused_chats(self, session: AsyncSession, chat_ids: Iterable[int]) -> list[int]:
        in_use = await _values(session, *(select(table.chat_id) for _, table in USER_TABLES))
        return sorted(set(chat_ids) - in_use)

    async def _unreferenced_blobs(self, session: AsyncSession, hashes: Iterable[str]) -> list[str]:
        in_use = await _values(
            session,
            select(StickerUse.image_sha256),
            select(Generation.chosen_sha256),
            select(TrainingRun.checkpoint_sha256),
        )
        return sorted(set(hashes) - in_use)

    async def _checkpoint_wal(self) -> None:
        """Copy the WAL into the main file and empty it, so deleted text survives in neither."""
        async with self.engine.connect() as connection:
            raw = await connection.get_raw_connection()
            cursor = await raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]
            busy, _, _ = await cursor.fetchone()
            if busy:
                log.warning(
                    "WAL checkpoint after forget was blocked by a reader; it completes on the next one"
                )

    async def counts(self) -> dict[str, int]:
        """Rows per table (for /stats)."""
        tables = {"users": User, "messages": Message, "sticker_uses": StickerUse, "generations": Generation}
        async with self.read_transaction() as session:
            return {
                name: (await session.execute(select(func.count()).select_from(table))).scalar_one()
                for name, table in tables.items()
            }
