"""Consent is checked where the store writes, in the same transaction: nobody is created by a write,
work in flight stores nothing for a user who withdrew or was forgotten, and withdrawing consent
deletes what it covered. Also: ids the store could not find again are refused, files are owner-only,
a blocked WAL checkpoint is retried, and no image a row references is ever unlinked."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import stat
from pathlib import Path

import pytest
from store_helpers import stored_blobs

from adapters.store import behavior_store
from adapters.store.behavior_store import SqlBehaviorStore
from adapters.store.database import sqlite_file
from adapters.store.errors import StoreError
from bot.behavior import CachedPreferences, GenerationRecord
from bot.composition import open_store
from bot.identity import MAX_ID_CHARS, UserKey
from bot.settings import Settings
from pmg_engine.behaviors import StickerSent

pytestmark = pytest.mark.both_backends

IMAGE = b"RIFF-a-sticker-image"


def _db_bytes(db_url: str) -> bytes:
    path = sqlite_file(db_url)
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*") if p.is_file())


async def test_writes_for_someone_without_consent_store_nothing_not_even_a_user(
    store: SqlBehaviorStore, alice: UserKey, bob: UserKey
) -> None:
    await store.set_consent(bob, personalize=False, train=False)  # bob said "No, thanks"

    for user in (alice, bob):
        assert await store.record_message(user, "chat", "hello", message_id=1) is None
        assert await store.record_sticker_use(user, "chat", StickerSent("🐸"), image=IMAGE) is None
        record = GenerationRecord(user=user, chat="chat", profile="offline", consent_at=None)
        assert await store.record_generation(record, image=IMAGE) is None
        assert not await store.store_preferences(user, CachedPreferences(["frog"], 0, "llm"), consent_at=None)

    assert await store.counts() == {"users": 1, "messages": 0, "sticker_uses": 0, "generations": 0}
    assert (await store.export_user(alice))["user"] is None
    assert await stored_blobs(store) == set()


async def test_a_sticker_image_is_kept_only_with_consent_to_train(
    store: SqlBehaviorStore, alice: UserKey
) -> None:
    await store.set_consent(alice, personalize=True, train=False)

    recorded = await store.record_sticker_use(alice, "chat", StickerSent("🐸"), message_id=1, image=IMAGE)

    assert recorded is not None and recorded.created
    [use] = await store.recent_history(alice, 10)
    assert use.image_sha256 is None
    assert await stored_blobs(store) == set()


async def test_a_sticker_download_racing_forget_stores_nothing(
    store: SqlBehaviorStore, alice: UserKey
) -> None:
    """Issue 12 item 3a: the adapter read consent, downloaded the image, and meanwhile /forget ran."""
    await store.set_consent(alice, personalize=True, train=True)
    assert (await store.get_consent(alice)).train  # what the adapter saw before its download

    await store.forget_user(alice)
    recorded = await store.record_sticker_use(alice, "chat", StickerSent("🐸"), message_id=1, image=IMAGE)

    assert recorded is None
    assert await store.counts() == {"users": 0, "messages": 0, "sticker_uses": 0, "generations": 0}
    assert await stored_blobs(store) == set()


async def test_a_generation_from_before_a_consent_change_is_not_stored(
    store: SqlBehaviorStore, alice: UserKey
) -> None:
    """Forgotten and back again while the sticker was drawn: the new account gets nothing of the old."""
    before = (await store.set_consent(alice, personalize=True)).consent
    await store.forget_user(alice)
    await store.set_consent(alice, personalize=True)

    record = GenerationRecord(user=alice, chat="chat", profile="offline", consent_at=before.updated_at)
    keywords = CachedPreferences(["made from the old history"], 0, "llm")

    assert await store.record_generation(record, image=IMAGE) is None
    assert not await store.store_preferences(alice, keywords, consent_at=before.updated_at)
    assert (await store.export_user(alice))["generations"] == []
    assert await store.cached_preferences(alice) is None


async def test_withdrawing_personalization_deletes_what_it_covered_and_says_so(
    store: SqlBehaviorStore, db_url: str, alice: UserKey, bob: UserKey
) -> None:
    consent = (await store.set_consent(alice, personalize=True, train=True, display_name="Alice")).consent
    await store.set_consent(bob, personalize=True, train=True)
    await store.record_message(alice, "group", "WITHDRAWNTEXT one", message_id=1)
    await store.record_message(alice, "group", "WITHDRAWNTEXT two", message_id=2)
    await store.record_sticker_use(alice, "group", StickerSent("🐸"), message_id=3, image=b"alice only")
    await store.record_sticker_use(alice, "group", StickerSent("🐶"), message_id=4, image=IMAGE)
    await store.record_sticker_use(bob, "group", StickerSent("🐶"), message_id=5, image=IMAGE)
    record = GenerationRecord(user=alice, chat="group", profile="offline", consent_at=consent.updated_at)
    generation = await store.record_generation(
        record, image=b"made for alice", candidate_images={0: b"made for alice", 1: b"runner-up"}
    )
    assert generation is not None and await store.record_feedback(alice, generation, "sent", chat="group")
    assert not await store.record_feedback(bob, generation, "chosen")  # not bob's to choose from
    await store.store_preferences(alice, CachedPreferences(["frog"], 3, "llm"), consent_at=consent.updated_at)

    saved = await store.set_consent(alice, personalize=False, train=False)

    assert saved.deleted == {
        "messages": 2,
        "sticker_uses": 2,
        "generations": 1,
        "feedback": 1,
        "preference_keywords": 1,
        "images": 3,  # alice's own image and the stickers made for her; the one bob shares stays
    }
    exported = await store.export_user(alice)
    assert exported["user"]["display_name"] is None and exported["user"]["consent_personalize"] is False
    names = ("messages", "sticker_uses", "generations", "feedback", "candidate_images", "blobs")
    assert [exported[name] for name in names] == [[]] * len(names)
    assert exported["preference_keywords"] == []
    [bob_use] = await store.recent_history(bob, 10)
    assert await store.read_blob(bob_use.image_sha256 or "") == IMAGE
    if db_url.startswith("sqlite"):  # PostgreSQL keeps dead tuples until autovacuum (README)
        assert b"WITHDRAWNTEXT" not in _db_bytes(db_url)


async def test_withdrawing_training_consent_deletes_the_kept_images_only(
    store: SqlBehaviorStore, alice: UserKey
) -> None:
    await store.set_consent(alice, personalize=True, train=True)
    await store.record_sticker_use(alice, "chat", StickerSent("🐸"), message_id=1, image=IMAGE)
    [sha256] = [item.image_sha256 for item in await store.recent_history(alice, 10)]

    saved = await store.set_consent(alice, personalize=True, train=False)

    assert saved.deleted == {"sticker_images": 1}
    [use] = await store.recent_history(alice, 10)
    assert use.kind == "sticker" and use.image_sha256 is None
    assert sha256 not in await stored_blobs(store)


def test_ids_longer_than_the_store_keeps_are_refused_where_a_key_is_made() -> None:
    assert UserKey.of("console", "x" * MAX_ID_CHARS).external_id == "x" * MAX_ID_CHARS
    with pytest.raises(ValueError, match=f"at most {MAX_ID_CHARS} characters"):
        UserKey.of("console", "x" * (MAX_ID_CHARS + 1))


async def test_a_user_with_the_longest_id_is_found_again(store: SqlBehaviorStore) -> None:
    longest = UserKey.of("console", "ü" * MAX_ID_CHARS)
    await store.set_consent(longest, personalize=True)
    await store.record_message(longest, "chat", "hi")

    with pytest.raises(StoreError, match="chat id"):
        await store.record_message(longest, "c" * (MAX_ID_CHARS + 1), "hi")

    assert (await store.get_consent(longest)).personalize
    assert len((await store.export_user(longest))["messages"]) == 1
    assert (await store.forget_user(longest))["messages"] == 1


async def test_the_data_dir_and_database_are_owner_only(tmp_path: Path, alice: UserKey) -> None:
    data_dir = tmp_path / "fresh"
    data_dir.mkdir(mode=0o755)  # as the model cache leaves it under a default umask
    async with await open_store(Settings(data_dir=data_dir)) as store:
        await store.set_consent(alice, personalize=True)
        await store.record_message(alice, "chat", "hi")
        files = [data_dir / "pmg.db", data_dir / "pmg.db-wal"]
        modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in files}

    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert modes == {"pmg.db": 0o600, "pmg.db-wal": 0o600}


@pytest.mark.sqlite_only
async def test_a_blocked_wal_checkpoint_is_retried_until_the_text_is_gone(
    store: SqlBehaviorStore,
    db_url: str,
    alice: UserKey,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(behavior_store, "CHECKPOINT_RETRY_S", (0.05, 0.2))
    await store.set_consent(alice, personalize=True)
    await store.record_message(alice, "chat", "FORGETMARK " * 20)
    reader = sqlite3.connect(sqlite_file(db_url))
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM messages").fetchall()  # holds a read snapshot of the WAL

    with caplog.at_level(logging.INFO, logger="adapters.store.behavior_store"):
        await store.forget_user(alice)
        assert "blocked by a reader" in caplog.text
        await asyncio.sleep(0.3)
        assert b"FORGETMARK" in _db_bytes(db_url)  # still blocked: the retry has not given up
        reader.rollback()
        reader.close()
        for _ in range(100):
            if "done (try" in caplog.text:
                break
            await asyncio.sleep(0.05)

    assert "deleted text is off the disk" in caplog.text
    assert b"FORGETMARK" not in _db_bytes(db_url)


async def test_forget_never_unlinks_an_image_another_users_write_is_about_to_reference(
    store: SqlBehaviorStore, alice: UserKey, bob: UserKey
) -> None:
    """Issue 12 item 11: alice alone has the image; bob sends the same one while alice is forgotten."""
    for user in (alice, bob):
        await store.set_consent(user, personalize=True, train=True)
    await store.record_sticker_use(alice, "chat", StickerSent("🐸"), message_id=1, image=IMAGE)

    await asyncio.gather(
        store.forget_user(alice),
        store.record_sticker_use(bob, "chat", StickerSent("🐸"), message_id=2, image=IMAGE),
    )

    [use] = await store.recent_history(bob, 10)
    assert use.image_sha256 is not None
    assert await store.read_blob(use.image_sha256) == IMAGE
