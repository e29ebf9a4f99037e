"""Platform-neutral records of what users do and what the bot made for them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from bot.identity import UserKey
from pmg_engine.behaviors import StickerSent


class StoreUnavailable(Exception):
    """The store cannot be reached right now (its database server is down or unreachable): nothing was
    saved or read. The bot tells the user and keeps running; the store reconnects when it returns."""


class BlobUnreadable(Exception):
    """A stored image or checkpoint cannot be read back (missing or corrupted)."""


CANT_SAVE = "I can't save anything right now (my database is unreachable); please try again in a minute."


@dataclass(frozen=True)
class Behavior:
    """One item of a user's history: a message they wrote or a sticker/emoji they sent."""

    kind: Literal["message", "sticker"]
    chat: str
    at: datetime
    text: str = ""
    sticker: StickerSent | None = None
    image_sha256: str | None = None
    id: int | None = None  # the stored row: how a generation names the messages it answered


@dataclass(frozen=True)
class Consent:
    personalize: bool = False
    train: bool = False
    # When the user last changed it: work that began before a change must not store what it made.
    updated_at: datetime | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ConsentSaved:
    """The consent now in force, and what withdrawing part of it deleted (table -> rows)."""

    consent: Consent
    deleted: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Recorded:
    """The row a behavior went to; `created` is False when the platform id was seen before."""

    id: int
    created: bool
    truncated: bool = False


@dataclass(frozen=True)
class CachedPreferences:
    keywords: list[str]
    watermark: int  # the user's behavior sequence number the keywords were computed from
    model: str


@dataclass(frozen=True)
class TrainingExample:
    """The paper's split: behaviors before the user's last sticker as input, its image as supervision.
    A chosen example (`keywords` set): behaviors before a generation, the candidate the user chose as
    supervision, and that generation's own preference keywords as E_k."""

    user: UserKey
    history: list[Behavior]
    target_image_sha256: str
    keywords: list[str] | None = None


FeedbackKind = Literal["sent", "another", "chosen", "pack", "inline"]


@dataclass(frozen=True)
class FeedbackEvent:
    """One feedback row as `pmg eval feedback` reads it: whose (an opaque number), what, and what the
    generation itself had picked by z, with the α it used."""

    user: int
    kind: str
    candidate_index: int | None
    weights: tuple[float, float] | None
    z_pick: int | None
    alpha: float | None


@dataclass(frozen=True)
class SentSticker:
    """A sticker the bot sent a user, as inline mode offers it again: the platform's file id, and what
    it was made from (for ranking against the inline text)."""

    generation_id: int
    file_id: str
    mood: str | None
    keywords: list[str]  # preference and target keywords


@dataclass(frozen=True)
class StoredGeneration:
    """A recorded generation as 🔄 Another and 🎨 Choose need it: its understanding, its candidates
    (weights, seed, scores) and the images of the safe ones by index."""

    id: int
    chat: str | None
    request_text: str
    preference_keywords: list[str]
    target_keywords: list[str]
    mood: str | None
    weight_sets: list[tuple[float, float]]
    candidates: list[dict[str, Any]]
    chosen_index: int | None
    alpha: float | None
    candidate_images: dict[int, str]  # candidate index -> sha256 of its sticker image
    created_at: datetime


@dataclass
class GenerationRecord:
    """Everything needed to explain or reproduce one /sticker answer."""

    user: UserKey
    chat: str | None
    profile: str
    request_text: str = ""  # the /sticker TEXT; empty when it answered stored messages
    context_message_ids: list[int] = field(default_factory=list)  # those messages, by row id
    consent_at: datetime | None = None  # Consent.updated_at when the request began
    preference_keywords: list[str] = field(default_factory=list)
    target_keywords: list[str] = field(default_factory=list)
    mood: str | None = None
    weight_sets: list[tuple[float, float]] = field(default_factory=list)
    candidates: list[dict[str, Any]] = field(default_factory=list)  # weights, seed, d_p, d_t, z
    chosen_index: int | None = None
    alpha: float | None = None
    notes: list[str] = field(default_factory=list)
    chosen_sha256: str | None = None
    models: dict[str, str] = field(default_factory=dict)
    checkpoint_version: str | None = None
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    status: Literal["done", "failed", "cancelled"] = "done"
    error: str | None = None
