"""The SQLite behavior store: what users did, what they consented to, what the bot made."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Select, delete, func, select, union, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from adapters.store import schema
from adapters.store.blob_files import sha256_of
from adapters.store.blob_store import BlobStore, BlobStoreKind, DatabaseBlobs, FileBlobs
from adapters.store.database import (
    WRITE,
    ServerOptions,
    create_engine,
    dialect_of,
    empty_wal,
    insert_for,
    unavailable,
)
from adapters.store.errors import BlobTooLargeError, DatabaseUnavailableError, StoreError
from adapters.store.sticker_queries import StickerQueries
from adapters.store.tables import (
    Base,
    Blob,
    CandidateImage,
    Chat,
    Generation,
    Message,
    PreferenceCache,
    StickerFeedback,
    StickerPack,
    StickerUse,
    TrainingRun,
    User,
    user_named,
    utc_now,
)
from bot.behavior import (
    Behavior,
    CachedPreferences,
    Consent,
    ConsentSaved,
    GenerationRecord,
    Recorded,
    TrainingExample,
)
from bot.identity import MAX_ID_CHARS, Platform, UserKey
from bot.text_input import clean_text
from pmg_engine.behaviors import StickerSent

log = logging.getLogger(__name__)

NAME_CHARS = 256  # display names, chat titles, sticker names and set titles
EXPORT_FORMAT = "pmg-stickers user export, version 2"
USER_TABLES = (
    ("messages", Message),
    ("sticker_uses", StickerUse),
    ("generations", Generation),
    ("feedback", StickerFeedback),
)
CHECKPOINT_RETRY_S = (1.0, 30.0)  # first and longest wait between tries of a blocked WAL checkpoint
CHECKPOINT_BUSY_MS = 200  # how long one try waits for readers to finish


async def _behavior_changed(session: AsyncSession, user_ids: Iterable[int], *, removed: bool = False) -> None:
    """The users' behavior changed: preference keywords cached before it are stale. When text was
    removed or rewritten, the cached keywords (made from it) are deleted, not just outdated."""
    ids = set(user_ids)
    await session.execute(update(User).where(User.id.in_(ids)).values(behavior_seq=User.behavior_seq + 1))
    if removed:
        await session.execute(delete(PreferenceCache).where(PreferenceCache.user_id.in_(ids)))


def _chat_ref(chat: str) -> str:
    """A platform chat id as stored and looked up: the one place it is checked."""
    if not chat or len(chat) > MAX_ID_CHARS:
        raise StoreError(f"a chat id must be 1 to {MAX_ID_CHARS} characters ({len(chat)} given)")
    return chat


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


async def _count(session: AsyncSession, table: type[Base], user_id: int) -> int:
    statement = select(func.count()).select_from(table).where(table.user_id == user_id)  # type: ignore[attr-defined]
    return (await session.execute(statement)).scalar_one()


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


class SqlBehaviorStore(StickerQueries):
    """Async API over one database (SQLite or PostgreSQL) and its content-addressed blobs.

    Only `set_consent` creates a user. Every write of what a user did or what the bot made for them
    checks that user's consent inside its own write transaction, so a /forget or a withdrawn consent
    is never undone by work that was already in flight: such a write stores nothing.
    """

    def __init__(
        self, engine: AsyncEngine, blobs: BlobStore, *, max_text_chars: int, max_blob_bytes: int
    ) -> None:
        self.engine = engine
        self.blobs = blobs
        self.max_text_chars = max_text_chars
        self.max_blob_bytes = max_blob_bytes
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        # Both dialects' INSERT … ON CONFLICT take the same arguments.
        self._insert = insert_for(engine)
        self._checkpoint_retry: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls,
        url: str,
        blob_dir: Path,
        *,
        max_text_chars: int = 4096,
        max_blob_bytes: int = 8 * 1024 * 1024,
        server: ServerOptions | None = None,
        blob_store: BlobStoreKind | None = None,
    ) -> SqlBehaviorStore:
        """Open the store, applying pending migrations first (refusing foreign or newer databases).
        Blobs are files in `blob_dir` or rows in the database (`blob_store`; by default files on SQLite,
        the database on PostgreSQL, where `blob_dir` only caches checkpoints as local files)."""
        await schema.upgrade(url, server=server)
        return cls.attach(
            url,
            blob_dir,
            max_text_chars=max_text_chars,
            max_blob_bytes=max_blob_bytes,
            server=server,
            blob_store=blob_store,
        )

    @classmethod
    def attach(
        cls,
        url: str,
        blob_dir: Path,
        *,
        max_text_chars: int = 4096,
        max_blob_bytes: int = 8 * 1024 * 1024,
        server: ServerOptions | None = None,
        blob_store: BlobStoreKind | None = None,
    ) -> SqlBehaviorStore:
        """The store as it is, not migrated (`pmg db copy` reads its source so)."""
        kind = blob_store or ("database" if dialect_of(url) == "postgresql" else "files")
        return cls(
            create_engine(url, server=server),
            DatabaseBlobs(blob_dir) if kind == "database" else FileBlobs(blob_dir),
            max_text_chars=max_text_chars,
            max_blob_bytes=max_blob_bytes,
        )

    async def close(self) -> None:
        if self._checkpoint_retry is not None:
            self._checkpoint_retry.cancel()
            await asyncio.gather(self._checkpoint_retry, return_exceptions=True)
        await self.engine.dispose()

    async def __aenter__(self) -> SqlBehaviorStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- transactions ----------------------------------------------------------------

    @asynccontextmanager
    async def write_transaction(self) -> AsyncIterator[AsyncSession]:
        """A transaction that takes the write lock first (database.py): no lost updates."""
        async with self._reachable(), self._sessions() as session, session.begin():
            await session.connection(execution_options=WRITE)
            yield session

    @asynccontextmanager
    async def read_transaction(self) -> AsyncIterator[AsyncSession]:
        async with self._reachable(), self._sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def _reachable(self) -> AsyncIterator[None]:
        """A server that went away (refused connection, a connection dropped mid-transaction) becomes
        DatabaseUnavailableError: the transaction is rolled back, the bot says it can't save right now,
        and the pool reconnects (pre-ping) once the server is back."""
        try:
            yield
        except OSError as error:
            raise self._unavailable(error) from None
        except DBAPIError as error:
            if not error.connection_invalidated and not isinstance(error.orig, OSError | ConnectionError):
                raise
            raise self._unavailable(error) from None

    def _unavailable(self, error: BaseException) -> DatabaseUnavailableError:
        lost = unavailable(self.engine, error)
        log.warning("%s", lost)
        return lost

    # --- users and consent -------------------------------------------------------------

    async def _upsert_user(self, session: AsyncSession, user: UserKey, display_name: str | None) -> int:
        """The one write that creates a user: giving or changing consent (/start's buttons, /consent)."""
        now = utc_now()
        statement = (
            self._insert(User)
            .values(
                platform=user.platform.value,
                external_id=user.external_id,
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
        statement = select(User.id).where(user_named(user))
        return (await session.execute(statement)).scalar_one_or_none()

    async def _consenting_user(
        self, session: AsyncSession, user: UserKey, *, display_name: str | None = None
    ) -> tuple[int, bool] | None:
        """(id, may train) of a user who consents to personalization now, in this transaction; None
        for anyone else (never seen, declined, withdrawn, forgotten)."""
        row = (
            await session.execute(
                select(User.id, User.consent_train).where(
                    user_named(user),
                    User.consent_personalize,
                )
            )
        ).one_or_none()
        if row is None:
            return None
        changes: dict[str, Any] = {"last_seen_at": utc_now()}
        if display_name is not None:
            changes["display_name"] = _short(display_name)
        await session.execute(update(User).where(User.id == row.id).values(**changes))
        return row.id, row.consent_train

    async def _user_unchanged_since(
        self, session: AsyncSession, user: UserKey, consent_at: datetime | None
    ) -> int | None:
        """The user's id if they consent to personalization and have not changed their consent since
        `consent_at` (when a request read it); None if they withdrew, changed it, or were forgotten."""
        if consent_at is None:
            return None
        statement = select(User.id).where(
            user_named(user),
            User.consent_personalize,
            User.consent_updated_at == consent_at,
        )
        return (await session.execute(statement)).scalar_one_or_none()

    async def _chat_id(self, session: AsyncSession, platform: Platform, chat: str) -> int | None:
        statement = select(Chat.id).where(
            Chat.platform == platform.value, Chat.external_id == _chat_ref(chat)
        )
        return (await session.execute(statement)).scalar_one_or_none()

    async def _upsert_chat(self, session: AsyncSession, platform: Platform, chat: str) -> int:
        statement = (
            self._insert(Chat)
            .values(platform=platform.value, external_id=_chat_ref(chat), created_at=utc_now())
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
    ) -> ConsentSaved:
        """Change the given flags (None leaves one as it is). Withdrawing consent deletes what it
        covered, in the same transaction: personalization → messages, sticker uses, generated
        stickers, cached keywords and the display name; training → the kept sticker images."""
        async with self.write_transaction() as session:
            user_id = await self._upsert_user(
                session, user, display_name if personalize is not False else None
            )
            deleted: dict[str, int] = {}
            if personalize is False:
                deleted = await self._delete_personal_data(session, user_id)
            elif train is False:
                deleted = await self._delete_training_images(session, user_id)
            changes: dict[str, Any] = {"consent_updated_at": utc_now()}
            if personalize is not None:
                changes["consent_personalize"] = personalize
            if train is not None:
                changes["consent_train"] = train
            await session.execute(update(User).where(User.id == user_id).values(**changes))
            row = (
                await session.execute(
                    select(User.consent_personalize, User.consent_train, User.consent_updated_at).where(
                        User.id == user_id
                    )
                )
            ).one()
        if any(deleted.values()):
            log.info("%s withdrew consent: deleted %s", user, deleted)
            await self._checkpoint_wal()
        consent = Consent(row.consent_personalize, row.consent_train, row.consent_updated_at)
        return ConsentSaved(consent, deleted)

    async def _delete_personal_data(self, session: AsyncSession, user_id: int) -> dict[str, int]:
        """Everything the user's consent to personalize covered; the user row keeps only their choice."""
        deleted = {name: await _count(session, table, user_id) for name, table in USER_TABLES}
        images = await self._user_blobs(session, user_id)
        deleted["preference_keywords"] = await _count(session, PreferenceCache, user_id)
        touched_chats = await self._user_chats(session, user_id)
        for table in (Message, StickerUse, StickerFeedback, Generation, PreferenceCache, StickerPack):
            await session.execute(delete(table).where(table.user_id == user_id))
        await session.execute(update(User).where(User.id == user_id).values(display_name=None))
        await self._drop_unused_chats(session, touched_chats)
        deleted["images"] = await self._drop_orphans(session, images)
        return deleted

    async def _delete_training_images(self, session: AsyncSession, user_id: int) -> dict[str, int]:
        """The sticker images kept for training; the sticker uses themselves stay (personalization)."""
        images = await _values(session, select(StickerUse.image_sha256).where(StickerUse.user_id == user_id))
        await session.execute(
            update(StickerUse).where(StickerUse.user_id == user_id).values(image_sha256=None)
        )
        await self._drop_orphans(session, images)
        return {"sticker_images": len(images)}

    async def get_consent(self, user: UserKey) -> Consent:
        """The user's consent; a user never seen has consented to nothing."""
        async with self.read_transaction() as session:
            row = (
                await session.execute(
                    select(User.consent_personalize, User.consent_train, User.consent_updated_at).where(
                        user_named(user)
                    )
                )
            ).one_or_none()
        return Consent(*row) if row else Consent()

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
    ) -> Recorded | None:
        """Store one message of a user who consents to personalization (None: nothing stored); over-long
        text is kept as a flagged prefix, a repeated id is a no-op."""
        clean = clean_text(text, self.max_text_chars)
        async with self.write_transaction() as session:
            consenting = await self._consenting_user(session, user, display_name=display_name)
            if consenting is None:
                return None
            user_id, _ = consenting
            chat_id = await self._upsert_chat(session, user.platform, chat)
            row = {
                "user_id": user_id,
                "chat_id": chat_id,
                "platform_message_id": _short(message_id, MAX_ID_CHARS),
                "text": clean.text,
                "text_truncated": clean.truncated,
                "original_length": clean.original_length,
                "created_at": sent_at or utc_now(),
            }
            recorded = await self._insert_behavior(
                session,
                Message,
                row,
                user_id,
                {"chat_id": chat_id, "platform_message_id": row["platform_message_id"]},
                truncated=clean.truncated,
            )
        if clean.truncated:
            log.warning(
                "message from %s cut from %d to %d characters", user, clean.original_length, len(clean.text)
            )
        return recorded

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
    ) -> Recorded | None:
        """Store one sticker/emoji use of a user who consents to personalization (None: nothing
        stored), and its image as a blob when given and they consent to training (size-capped)."""
        if image is not None and len(image) > self.max_blob_bytes:
            raise BlobTooLargeError(
                f"a sticker image of {len(image)} bytes is over the limit of {self.max_blob_bytes} "
                "(PMG_MAX_BLOB_BYTES)"
            )
        async with self.write_transaction() as session:
            consenting = await self._consenting_user(session, user, display_name=display_name)
            if consenting is None:
                return None
            user_id, may_train = consenting
            chat_id = await self._upsert_chat(session, user.platform, chat)
            image_sha256 = await self._keep_blob(session, image, image_mime) if image and may_train else None
            row = {
                "user_id": user_id,
                "chat_id": chat_id,
                "platform_message_id": _short(message_id, MAX_ID_CHARS),
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
            recorded = await self._insert_behavior(session, StickerUse, row, user_id, natural_key)
            if not recorded.created and image_sha256:  # a repeat delivery: its image may be used by none
                await self._drop_orphans(session, {image_sha256})
            return recorded

    async def edit_message(self, user: UserKey, chat: str, message_id: str | int, text: str) -> bool:
        """The user edited a message: the stored text follows (an unknown message is not created)."""
        clean = clean_text(text, self.max_text_chars)
        async with self.write_transaction() as session:
            consenting = await self._consenting_user(session, user)
            chat_id = await self._chat_id(session, user.platform, chat)
            if consenting is None or chat_id is None:
                return False
            user_id, _ = consenting
            edited = await session.execute(
                update(Message)
                .where(
                    Message.user_id == user_id,
                    Message.chat_id == chat_id,
                    Message.platform_message_id == _short(message_id, MAX_ID_CHARS),
                )
                .values(
                    text=clean.text, text_truncated=clean.truncated, original_length=clean.original_length
                )
            )
            if not edited.rowcount:  # type: ignore[attr-defined]
                return False
            await _behavior_changed(session, {user_id}, removed=True)
        await self._checkpoint_wal()  # the text before the edit leaves the database file too
        return True

    async def delete_message(self, platform: Platform, chat: str, message_id: str | int) -> int:
        """A message was deleted on the platform: its text and sticker uses go too (images no longer
        used by anyone with them). Returns how many rows went."""
        async with self.write_transaction() as session:
            chat_id = await self._chat_id(session, platform, chat)
            if chat_id is None:
                return 0
            where = {"chat_id": chat_id, "platform_message_id": _short(message_id, MAX_ID_CHARS)}
            owners = await _values(
                session, *(select(table.user_id).filter_by(**where) for table in (Message, StickerUse))
            )
            images = await _values(session, select(StickerUse.image_sha256).filter_by(**where))
            removed = 0
            for table in (Message, StickerUse):
                removed += (await session.execute(delete(table).filter_by(**where))).rowcount  # type: ignore[attr-defined]
            await _behavior_changed(session, owners, removed=True)
            await self._drop_orphans(session, images)
        if removed:
            await self._checkpoint_wal()
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
            await session.execute(
                self._insert(table).values(**row).on_conflict_do_nothing().returning(table.id)
            )
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
                statement = statement.where(Chat.external_id == _chat_ref(chat))
            if before is not None:
                statement = statement.where(table.created_at <= before[0])
            return statement.order_by(table.created_at.desc(), table.id.desc()).limit(limit)

        messages = await session.execute(newest(select(Message, Chat.external_id), Message))
        stickers = await session.execute(newest(select(StickerUse, Chat.external_id), StickerUse))
        items = [
            Behavior("message", chat_external, message.created_at, text=message.text, id=message.id)
            for message, chat_external in messages
        ]
        items += [
            Behavior(
                "sticker",
                chat_external,
                use.created_at,
                sticker=StickerSent(use.emoji, use.name, use.set_title, use.platform_sticker_id),
                image_sha256=use.image_sha256,
                id=use.id,
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
            statement = select(User.behavior_seq).where(user_named(user))
            return (await session.execute(statement)).scalar_one_or_none() or 0

    async def cached_preferences(self, user: UserKey) -> CachedPreferences | None:
        async with self.read_transaction() as session:
            statement = (
                select(PreferenceCache).join(User, User.id == PreferenceCache.user_id).where(user_named(user))
            )
            cached = (await session.execute(statement)).scalar_one_or_none()
        if cached is None:
            return None
        return CachedPreferences(list(cached.keywords), cached.watermark, cached.model)

    async def store_preferences(
        self, user: UserKey, preferences: CachedPreferences, *, consent_at: datetime | None
    ) -> bool:
        """Cache keywords made from the user's history, unless their consent changed since `consent_at`
        (the keywords would come from data they withdrew). False: nothing stored."""
        async with self.write_transaction() as session:
            user_id = await self._user_unchanged_since(session, user, consent_at)
            if user_id is None:
                return False
            values = {
                "watermark": preferences.watermark,
                "keywords": list(preferences.keywords),
                "model": preferences.model,
                "updated_at": utc_now(),
            }
            await session.execute(
                self._insert(PreferenceCache)
                .values(user_id=user_id, **values)
                .on_conflict_do_update(index_elements=[PreferenceCache.user_id], set_=values)
            )
        return True

    # --- blobs ---------------------------------------------------------------------------

    async def _keep_blob(self, session: AsyncSession, data: bytes, mime: str) -> str:
        """Its row, then its bytes, inside a write transaction: the write lock keeps every orphan sweep
        (which runs under the same lock) from removing the bytes before the row references them."""
        sha256 = sha256_of(data)
        row = {"sha256": sha256, "size": len(data), "mime": _short(mime, 64), "created_at": utc_now()}
        await session.execute(self._insert(Blob).values(**row).on_conflict_do_nothing())
        await self.blobs.write(session, sha256, data)
        return sha256

    async def _drop_orphans(self, session: AsyncSession, hashes: Iterable[str | None]) -> int:
        """Rows and files of `hashes` that nothing references any more, removed inside the write
        transaction that dropped the last reference (before its commit: no writer can take one of them
        in between). Returns how many went."""
        orphans = await self._unreferenced_blobs(session, {sha256 for sha256 in hashes if sha256})
        for sha256 in orphans:
            await self.blobs.delete(session, sha256)
        await session.execute(delete(Blob).where(Blob.sha256.in_(orphans)))
        return len(orphans)

    async def put_blob(self, data: bytes, mime: str) -> str:
        """Store bytes produced by the bot itself (checkpoints); returns the sha256."""
        async with self.write_transaction() as session:
            return await self._keep_blob(session, data, mime)

    async def read_blob(self, sha256: str) -> bytes:
        async with self.read_transaction() as session:
            return await self.blobs.read(session, sha256)

    async def blob_file(self, sha256: str) -> Path:
        """The blob as a file of this host, for what loads by path (the promoted checkpoint)."""
        async with self.read_transaction() as session:
            return await self.blobs.local_file(session, sha256)

    async def blob_hashes(self) -> set[str]:
        """Every blob the store indexes (for /stats and the tests' "nothing left behind")."""
        async with self.read_transaction() as session:
            return set((await session.execute(select(Blob.sha256))).scalars())

    # --- generations and training runs ----------------------------------------------------

    async def record_generation(
        self,
        record: GenerationRecord,
        *,
        image: bytes | None = None,
        image_mime: str = "image/webp",
        candidate_images: dict[int, bytes] | None = None,
    ) -> int | None:
        """Store one generation, the chosen sticker's image and the safe candidates' images (by index)
        as blobs when given: only for a user who consents to personalization and has not changed that
        since `record.consent_at` (None: nothing stored, for anyone else — never seen, declined,
        withdrawn, forgotten)."""
        async with self.write_transaction() as session:
            user_id = await self._user_unchanged_since(session, record.user, record.consent_at)
            if user_id is None:
                return None
            chat_id = (
                await self._upsert_chat(session, record.user.platform, record.chat) if record.chat else None
            )
            chosen = await self._keep_blob(session, image, image_mime) if image else record.chosen_sha256
            generation = Generation(
                user_id=user_id,
                chat_id=chat_id,
                request_text=clean_text(record.request_text, self.max_text_chars).text,
                context_message_ids=list(record.context_message_ids),
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
            for index, data in sorted((candidate_images or {}).items()):
                sha256 = await self._keep_blob(session, data, image_mime)
                session.add(CandidateImage(generation_id=generation.id, candidate_index=index, sha256=sha256))
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

    async def iter_chosen_examples(self, *, history_limit: int = 10) -> AsyncIterator[TrainingExample]:
        """One example per sticker a user who consents to training chose (🎨) or added to a pack: the
        behaviors before its generation as input, the chosen candidate's image as supervision."""
        async with self.read_transaction() as session:
            chosen = (
                await session.execute(
                    select(
                        User.id,
                        User.platform,
                        User.external_id,
                        Generation.created_at,
                        Generation.preference_keywords,
                        CandidateImage.sha256,
                    )
                    .join(StickerFeedback, StickerFeedback.user_id == User.id)
                    .join(Generation, Generation.id == StickerFeedback.generation_id)
                    .join(
                        CandidateImage,
                        (CandidateImage.generation_id == Generation.id)
                        & (CandidateImage.candidate_index == StickerFeedback.candidate_index),
                    )
                    .where(User.consent_train, StickerFeedback.kind.in_(("chosen", "pack")))
                    .order_by(StickerFeedback.id)
                )
            ).all()
        for user_id, platform, external_id, made_at, keywords, image in chosen:
            async with self.read_transaction() as session:
                history = await self._history(session, user_id, limit=history_limit, before=(made_at, 0))
            yield TrainingExample(UserKey(Platform(platform), external_id), history, image, list(keywords))

    # --- privacy: export and forget ---------------------------------------------------------

    async def export_user(self, user: UserKey) -> dict[str, Any]:
        """Everything stored about the user, as JSON-ready data (blobs by hash, size and type; their
        bytes are read with `read_blob`)."""
        async with self.read_transaction() as session:
            row = (await session.execute(select(User).where(user_named(user)))).scalar_one_or_none()
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
            images = await session.execute(
                select(CandidateImage)
                .join(Generation, Generation.id == CandidateImage.generation_id)
                .where(Generation.user_id == row.id)
            )
            exported["candidate_images"] = [_exported(image, chats) for image in images.scalars()]
            packs = await session.execute(select(StickerPack).where(StickerPack.user_id == row.id))
            exported["sticker_packs"] = [_exported(pack, chats) for pack in packs.scalars()]
            cache = await session.get(PreferenceCache, row.id)
            exported["preference_keywords"] = cache.keywords if cache else []
            hashes = await self._user_blobs(session, row.id)
            blobs = (await session.execute(select(Blob).where(Blob.sha256.in_(hashes)))).scalars()
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
                report[name] = await _count(session, table, user_id)
            touched_chats = await self._user_chats(session, user_id)
            user_blobs = await self._user_blobs(session, user_id)
            await session.execute(delete(User).where(User.id == user_id))  # cascades to the user's rows
            report["chats"] = await self._drop_unused_chats(session, touched_chats)
            report["blobs"] = await self._drop_orphans(session, user_blobs)
        await self._checkpoint_wal()
        report["users"] = 1
        return report

    async def _user_chats(self, session: AsyncSession, user_id: int) -> set[int]:
        return await _values(
            session, *(select(table.chat_id).where(table.user_id == user_id) for _, table in USER_TABLES)
        )

    async def _user_blobs(self, session: AsyncSession, user_id: int) -> set[str]:
        return await _values(
            session,
            select(StickerUse.image_sha256).where(StickerUse.user_id == user_id),
            select(Generation.chosen_sha256).where(Generation.user_id == user_id),
            select(CandidateImage.sha256)
            .join(Generation, Generation.id == CandidateImage.generation_id)
            .where(Generation.user_id == user_id),
        )

    async def _drop_unused_chats(self, session: AsyncSession, chat_ids: Iterable[int]) -> int:
        """Chats no row refers to any more: their ids say who talked where."""
        in_use = await _values(session, *(select(table.chat_id) for _, table in USER_TABLES))
        unused = sorted(set(chat_ids) - in_use)
        await session.execute(delete(Chat).where(Chat.id.in_(unused)))
        return len(unused)

    async def _unreferenced_blobs(self, session: AsyncSession, hashes: Iterable[str]) -> list[str]:
        in_use = await _values(
            session,
            select(StickerUse.image_sha256),
            select(Generation.chosen_sha256),
            select(CandidateImage.sha256),
            select(TrainingRun.checkpoint_sha256),
        )
        return sorted(set(hashes) - in_use)

    async def _checkpoint_wal(self) -> None:
        """Copy the WAL into the main file and empty it, so deleted text survives in neither. A reader
        can block it; then it is retried in the background until it succeeds. PostgreSQL has no WAL file
        of deleted text to empty: its dead tuples wait for autovacuum (README: Running on PostgreSQL)."""
        if await self._try_checkpoint():
            return
        log.warning("WAL checkpoint after a deletion was blocked by a reader; retrying in the background")
        if self._checkpoint_retry is None or self._checkpoint_retry.done():
            self._checkpoint_retry = asyncio.create_task(self._retry_checkpoint(), name="pmg-wal-checkpoint")

    async def _try_checkpoint(self) -> bool:
        return await empty_wal(self.engine, busy_ms=CHECKPOINT_BUSY_MS)

    async def _retry_checkpoint(self) -> None:
        wait, longest = CHECKPOINT_RETRY_S
        tries = 1
        while True:
            await asyncio.sleep(wait)
            tries += 1
            try:
                if await self._try_checkpoint():
                    log.info(
                        "WAL checkpoint after a deletion done (try %d): deleted text is off the disk", tries
                    )
                    return
            except Exception:  # a broken connection must not end the retries
                log.exception("WAL checkpoint try %d failed", tries)
            wait = min(wait * 2, longest)

    async def counts(self) -> dict[str, int]:
        """Rows per table (for /stats)."""
        tables = {"users": User, "messages": Message, "sticker_uses": StickerUse, "generations": Generation}
        async with self.read_transaction() as session:
            return {
                name: (await session.execute(select(func.count()).select_from(table))).scalar_one()
                for name, table in tables.items()
            }
