"""/forget: every row and file of one user goes, nothing of anyone else, and no text lingers on disk."""

from __future__ import annotations

from pathlib import Path

import pytest
from store_helpers import stored_blobs

from adapters.store.behavior_store import SqlBehaviorStore
from adapters.store.database import sqlite_file
from bot.behavior import CachedPreferences, GenerationRecord
from bot.identity import UserKey
from pmg_engine.behaviors import StickerSent

pytestmark = pytest.mark.both_backends
SHARED_IMAGE = b"RIFF-shared-sticker-image"


async def _populate(store: SqlBehaviorStore, user: UserKey, marker: str) -> str:
    """Give `user` a full history; returns the sha256 of an image only this user has."""
    consent = (
        await store.set_consent(user, personalize=True, train=True, display_name=f"name-{marker}")
    ).consent
    await store.record_message(user, f"dm-{marker}", f"secret text {marker} " * 3, message_id=1)
    await store.record_message(user, "group", f"group text {marker}", message_id=f"g-{marker}")
    await store.record_sticker_use(
        user,
        "group",
        StickerSent("😺", f"cat {marker}", f"set {marker}"),
        message_id=f"s-{marker}",
        image=SHARED_IMAGE,
    )
    await store.record_sticker_use(
        user,
        "group",
        StickerSent("🐶", "dog"),
        message_id=f"t-{marker}",
        image=f"own image {marker}".encode(),
    )
    generated = f"generated sticker {marker}".encode()
    request = GenerationRecord(
        user=user,
        chat="group",
        profile="offline",
        request_text=f"request {marker}",
        consent_at=consent.updated_at,
    )
    candidates = {0: generated, 1: f"candidate {marker}".encode(), 2: SHARED_IMAGE}
    generation_id = await store.record_generation(request, image=generated, candidate_images=candidates)
    assert generation_id is not None
    assert await store.record_feedback(user, generation_id, "chosen", chat="group", candidate_index=1)
    failed = GenerationRecord(
        user=user, chat=None, profile="offline", status="failed", consent_at=consent.updated_at
    )
    assert await store.record_generation(failed)
    keywords = CachedPreferences([f"keyword-{marker}"], 4, "llm")
    assert await store.store_preferences(user, keywords, consent_at=consent.updated_at)
    return (await store.recent_history(user, 10))[-1].image_sha256 or ""


def _db_bytes(db_url: str) -> bytes:
    path = sqlite_file(db_url)
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*") if p.is_file())


async def test_forget_removes_everything_of_one_user_only(store: SqlBehaviorStore, alice: UserKey) -> None:
    bob = UserKey.of("telegram", 1002)  # same platform: the two share the group chat, which must stay
    alice_image = await _populate(store, alice, "ALICEMARK")
    bob_image = await _populate(store, bob, "BOBMARK")
    bob_before = await store.export_user(bob)

    report = await store.forget_user(alice)

    assert report == {
        "users": 1,
        "messages": 2,
        "sticker_uses": 2,
        "generations": 2,
        "feedback": 1,
        "chats": 1,
        "blobs": 3,  # own image, generated sticker, own candidate; the shared image stays for bob
    }
    assert (await store.export_user(alice))["user"] is None
    assert await store.recent_history(alice, 10) == []
    assert await store.cached_preferences(alice) is None
    assert alice_image not in await stored_blobs(store)
    bob_after = await store.export_user(bob)
    assert {k: v for k, v in bob_after.items() if k != "exported_at"} == {
        k: v for k, v in bob_before.items() if k != "exported_at"
    }
    assert await store.read_blob(bob_image) == b"own image BOBMARK"
    assert bob_after["sticker_uses"][0]["image_sha256"] in await stored_blobs(store)  # shared image stays


@pytest.mark.sqlite_only
async def test_forgotten_text_is_gone_from_the_database_files(
    store: SqlBehaviorStore, db_url: str, alice: UserKey, bob: UserKey
) -> None:
    await _populate(store, alice, "ALICEMARK")
    await _populate(store, bob, "BOBMARK")
    assert b"ALICEMARK" in _db_bytes(db_url)  # the grep below can see text at all

    await store.forget_user(alice)

    on_disk = _db_bytes(db_url)
    assert b"ALICEMARK" not in on_disk
    assert b"BOBMARK" in on_disk


async def test_forgetting_an_unknown_user_changes_nothing(
    store: SqlBehaviorStore, alice: UserKey, bob: UserKey, tmp_path: Path
) -> None:
    await _populate(store, bob, "BOBMARK")
    before = await store.counts()

    report = await store.forget_user(alice)

    assert report["users"] == 0
    assert await store.counts() == before


async def test_a_deleted_message_takes_its_stickers_and_unshared_images_along(
    store: SqlBehaviorStore, alice: UserKey, bob: UserKey
) -> None:
    alice_own = await _populate(store, alice, "a")
    await _populate(store, bob, "b")
    before = await store.behavior_watermark(alice)

    assert await store.delete_message(alice.platform, "group", "t-a") == 1
    assert await store.delete_message(alice.platform, "group", "s-a") == 1
    assert await store.delete_message(alice.platform, "no-such-chat", "t-a") == 0

    left = [item.sticker for item in await store.recent_history(alice, 10) if item.kind == "sticker"]
    assert left == []
    assert alice_own not in await stored_blobs(store)
    assert await store.behavior_watermark(alice) > before  # cached preferences are stale now
    bob_images = [item.image_sha256 for item in await store.recent_history(bob, 10) if item.image_sha256]
    assert set(bob_images) <= await stored_blobs(store)  # the shared image is bob's too


async def test_an_edit_changes_only_the_editors_own_stored_message(
    store: SqlBehaviorStore, alice: UserKey, bob: UserKey
) -> None:
    for user in (alice, bob):
        await store.set_consent(user, personalize=True)
    await store.record_message(alice, "group", "I like cats", message_id="m1")
    assert await store.edit_message(bob, "group", "m1", "hijacked") is False  # not bob's message
    assert await store.edit_message(alice, "group", "m1", "I like frogs") is True
    assert await store.edit_message(alice, "group", "never-stored", "x") is False
    assert [item.text for item in await store.recent_history(alice, 10)] == ["I like frogs"]
