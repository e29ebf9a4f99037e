"""What the use cases need of the behavior store: this interface, not a database. The composition root
and the CLI choose the implementation (adapters/store: SQLite or PostgreSQL through SQLAlchemy)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from bot.behavior import (
    Behavior,
    CachedPreferences,
    Consent,
    ConsentSaved,
    FeedbackEvent,
    FeedbackKind,
    GenerationRecord,
    Recorded,
    SentSticker,
    StoredGeneration,
    TrainingExample,
)
from bot.identity import Platform, UserKey
from pmg_engine.behaviors import StickerSent


class BehaviorStore(Protocol):
    """Every write of a user's behavior or of what was made for them checks their consent in its own
    transaction; an unreachable database raises `bot.behavior.StoreUnavailable`."""

    max_blob_bytes: int

    # consent and privacy
    async def set_consent(
        self,
        user: UserKey,
        *,
        personalize: bool | None = None,
        train: bool | None = None,
        display_name: str | None = None,
    ) -> ConsentSaved: ...
    async def get_consent(self, user: UserKey) -> Consent: ...
    async def export_user(self, user: UserKey) -> dict[str, Any]: ...
    async def forget_user(self, user: UserKey) -> dict[str, int]: ...

    # behavior
    async def record_message(
        self,
        user: UserKey,
        chat: str,
        text: str | bytes,
        *,
        message_id: str | int | None = None,
        sent_at: datetime | None = None,
        display_name: str | None = None,
    ) -> Recorded | None: ...
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
    ) -> Recorded | None: ...
    async def edit_message(self, user: UserKey, chat: str, message_id: str | int, text: str) -> bool: ...
    async def delete_message(self, platform: Platform, chat: str, message_id: str | int) -> int: ...
    async def recent_history(self, user: UserKey, n: int, *, chat: str | None = None) -> list[Behavior]: ...
    async def behavior_watermark(self, user: UserKey) -> int: ...

    # what the bot made and learned
    async def cached_preferences(self, user: UserKey) -> CachedPreferences | None: ...
    async def store_preferences(
        self, user: UserKey, preferences: CachedPreferences, *, consent_at: datetime | None
    ) -> bool: ...
    async def record_generation(
        self,
        record: GenerationRecord,
        *,
        image: bytes | None = None,
        image_mime: str = "image/webp",
        candidate_images: dict[int, bytes] | None = None,
    ) -> int | None: ...
    async def generation(self, user: UserKey, generation_id: int) -> StoredGeneration | None: ...
    async def record_feedback(
        self,
        user: UserKey,
        generation_id: int,
        kind: FeedbackKind,
        *,
        chat: str | None = None,
        candidate_index: int | None = None,
        weights: tuple[float, float] | None = None,
        file_id: str | None = None,
    ) -> bool: ...
    async def sent_stickers(self, user: UserKey, limit: int) -> list[SentSticker]: ...
    async def packs(self, user: UserKey) -> list[str]: ...
    async def pack_added(self, user: UserKey, name: str) -> bool: ...
    async def pack_dropped(self, user: UserKey, name: str) -> None: ...
    async def chosen_weights(self, user: UserKey) -> list[tuple[float, float]]: ...
    async def feedback_events(self) -> list[FeedbackEvent]: ...
    async def start_training_run(self, version: str, config: dict[str, Any]) -> int: ...
    async def finish_training_run(
        self,
        run_id: int,
        *,
        status: str,
        metrics: dict[str, Any],
        checkpoint_sha256: str | None = None,
        promoted: bool = False,
        error: str | None = None,
    ) -> None: ...
    async def promoted_checkpoint(self) -> tuple[str, str] | None: ...
    def iter_training_examples(self, *, history_limit: int = 10) -> AsyncIterator[TrainingExample]: ...
    def iter_chosen_examples(self, *, history_limit: int = 10) -> AsyncIterator[TrainingExample]: ...

    # blobs
    async def put_blob(self, data: bytes, mime: str) -> str: ...
    async def read_blob(self, sha256: str) -> bytes: ...
    async def blob_file(self, sha256: str) -> Path: ...

    async def counts(self) -> dict[str, int]: ...
