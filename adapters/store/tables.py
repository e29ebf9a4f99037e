"""The behavior store's tables (SQLAlchemy 2 declarative); migrations/ must match them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    and_,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.elements import ColumnElement

if TYPE_CHECKING:
    from bot.identity import UserKey

PLATFORMS_SQL = "platform IN ('telegram', 'discord', 'console')"


def utc_now() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC, returns aware datetimes: SQLite keeps no time zone of its own."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; pass an aware one (UTC)")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


class Base(DeclarativeBase):
    # Named constraints keep batch migrations on SQLite able to find and alter them.
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime,
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("platform", "external_id"),
        CheckConstraint(PLATFORMS_SQL, name="known_platform"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str | None] = mapped_column(String(256))
    consent_personalize: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_train: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_updated_at: Mapped[datetime | None]
    # Bumped on every stored behavior: the preference cache is valid while it is unchanged.
    behavior_seq: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    last_seen_at: Mapped[datetime] = mapped_column(default=utc_now)


def user_named(user: UserKey) -> ColumnElement[bool]:
    """The row of this platform user."""
    return and_(User.platform == user.platform.value, User.external_id == user.external_id)


class Chat(Base):
    __tablename__ = "chats"
    __table_args__ = (
        UniqueConstraint("platform", "external_id"),
        CheckConstraint(PLATFORMS_SQL, name="known_platform"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(64))
    title: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class Blob(Base):
    """A content-addressed blob's index entry; its bytes are a file under the blob folder or a
    `blob_bytes` row, as PMG_BLOB_STORE says."""

    __tablename__ = "blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int]
    mime: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class BlobBytes(Base):
    """A blob's bytes in the database (PMG_BLOB_STORE=database): they go with their index row."""

    __tablename__ = "blob_bytes"

    sha256: Mapped[str] = mapped_column(ForeignKey("blobs.sha256", ondelete="CASCADE"), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class Message(Base):
    __tablename__ = "messages"
    # A platform message id is unique within its chat: recording it twice is a no-op.
    __table_args__ = (
        UniqueConstraint("chat_id", "platform_message_id"),
        Index(None, "user_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    chat_id: Mapped[int] = mapped_column(ForeignKey("chats.id", ondelete="CASCADE"))
    platform_message_id: Mapped[str | None] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    text_truncated: Mapped[bool] = mapped_column(Boolean, default=False)
    original_length: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class StickerUse(Base):
    """One sticker or emoji a user sent; a message with three emoji gives three rows."""

    __tablename__ = "sticker_uses"
    __table_args__ = (
        UniqueConstraint("chat_id", "platform_message_id", "item_index"),
        Index(None, "user_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    chat_id: Mapped[int] = mapped_column(ForeignKey("chats.id", ondelete="CASCADE"))
    platform_message_id: Mapped[str | None] = mapped_column(String(64))
    item_index: Mapped[int] = mapped_column(Integer, default=0)
    platform_sticker_id: Mapped[str | None] = mapped_column(String(256))
    emoji: Mapped[str | None] = mapped_column(String(64))
    set_title: Mapped[str | None] = mapped_column(String(256))
    name: Mapped[str | None] = mapped_column(String(256))
    image_sha256: Mapped[str | None] = mapped_column(ForeignKey("blobs.sha256"))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class Generation(Base):
    """One /sticker request and everything needed to explain or reproduce its answer."""

    __tablename__ = "generations"
    __table_args__ = (Index(None, "user_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    chat_id: Mapped[int | None] = mapped_column(ForeignKey("chats.id", ondelete="CASCADE"))
    request_text: Mapped[str] = mapped_column(Text, default="")  # the /sticker TEXT itself, if given
    # Without TEXT the request answered the user's stored messages: named by id, never copied, so a
    # message deleted or edited later leaves no stale copy here.
    context_message_ids: Mapped[list[Any] | None]
    preference_keywords: Mapped[list[Any]]
    target_keywords: Mapped[list[Any]]
    mood: Mapped[str | None] = mapped_column(String(32))
    weight_sets: Mapped[list[Any]]
    candidates: Mapped[list[Any]]  # per candidate: weights, seed, d_p, d_t, z
    chosen_index: Mapped[int | None]
    alpha: Mapped[float | None] = mapped_column(Float)  # the z rule's α this request used
    notes: Mapped[list[Any] | None]  # what the user was told (keywords left out, no art for one)
    chosen_sha256: Mapped[str | None] = mapped_column(ForeignKey("blobs.sha256"))
    profile: Mapped[str] = mapped_column(String(16))
    models: Mapped[dict[str, Any]]
    checkpoint_version: Mapped[str | None] = mapped_column(String(64))
    timings: Mapped[dict[str, Any]]  # seconds per stage
    status: Mapped[str] = mapped_column(String(16), default="done")
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class CandidateImage(Base):
    """A candidate a generation drew and the safety check passed, as a sticker image: what 🎨 Choose
    shows on its contact sheet and sends when picked (the chosen one is `Generation.chosen_sha256`)."""

    __tablename__ = "candidate_images"

    generation_id: Mapped[int] = mapped_column(
        ForeignKey("generations.id", ondelete="CASCADE"), primary_key=True
    )
    candidate_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(ForeignKey("blobs.sha256"))


FEEDBACK_KINDS_SQL = "kind IN ('sent', 'another', 'chosen', 'pack', 'inline')"


class StickerFeedback(Base):
    """What a user did with a sticker the bot made: it was sent, they asked for another, chose a
    candidate (with its weight set), added it to their pack, or used it inline."""

    __tablename__ = "sticker_feedback"
    __table_args__ = (
        Index(None, "user_id", "created_at"),
        CheckConstraint(FEEDBACK_KINDS_SQL, name="known_kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    chat_id: Mapped[int | None] = mapped_column(ForeignKey("chats.id", ondelete="CASCADE"))
    generation_id: Mapped[int] = mapped_column(ForeignKey("generations.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    candidate_index: Mapped[int | None]
    weights: Mapped[list[Any] | None]  # the candidate's [w_p, w_t]
    # "sent": the platform's id of the sticker as sent, so inline mode can offer it again without upload
    file_id: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class StickerPack(Base):
    """A personal sticker pack the bot made for a user on their platform (a Telegram sticker set)."""

    __tablename__ = "sticker_packs"
    __table_args__ = (UniqueConstraint("name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    stickers: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class PreferenceCache(Base):
    """A user's preference keywords and the behavior_seq they were computed from."""

    __tablename__ = "preference_cache"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    watermark: Mapped[int]
    keywords: Mapped[list[Any]]
    model: Mapped[str] = mapped_column(String(256))
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)


class TrainingRun(Base):
    """One retrain: its checkpoint (a blob), status and metrics."""

    __tablename__ = "training_runs"
    __table_args__ = (UniqueConstraint("version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="running")
    config: Mapped[dict[str, Any]]
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    checkpoint_sha256: Mapped[str | None] = mapped_column(ForeignKey("blobs.sha256"))
    promoted: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(default=utc_now)
    finished_at: Mapped[datetime | None]
