"""The behavior store's API: history, consent, preference cache, generations, training data, export."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from store_helpers import stored_blobs

from adapters.store.behavior_store import SqlBehaviorStore
from adapters.store.blob_store import BlobStoreKind
from bot.behavior import CachedPreferences, Consent, GenerationRecord
from bot.identity import UserKey
from pmg_engine.behaviors import StickerSent

pytestmark = pytest.mark.both_backends

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


async def test_recent_history_merges_messages_and_stickers_oldest_first(
    store: SqlBehaviorStore, alice: UserKey
) -> None:
    await store.set_consent(alice, personalize=True)
    await store.record_message(alice, "a", "first", sent_at=at(1))
    await store.record_sticker_use(alice, "a", StickerSent("😺", "grinning cat", "Kitty"), sent_at=at(2))
    await store.record_message(alice, "b", "elsewhere", sent_at=at(3))
    await store.record_message(alice, "a", "last", sent_at=at(4))

    history = await store.recent_history(alice, 3)
    in_chat_a = await store.recent_history(alice, 10, chat="a")

    assert [(item.kind, item.text or item.sticker.emoji) for item in history] == [  # type: ignore[union-attr]
        ("sticker", "😺"),
        ("message", "elsewhere"),
        ("message", "last"),
    ]
    assert [item.chat for item in in_chat_a] == ["a", "a", "a"]
    assert history[0].at == at(2)


async def test_history_of_someone_never_seen_is_empty(store: SqlBehaviorStore, bob: UserKey) -> None:
    assert await store.recent_history(bob, 10) == []


async def test_consent_defaults_to_nothing_and_each_flag_changes_alone(
    store: SqlBehaviorStore, alice: UserKey
) -> None:
    assert await store.get_consent(alice) == Consent(personalize=False, train=False)

    assert (await store.set_consent(alice, personalize=True)).consent == Consent(
        personalize=True, train=False
    )
    assert (await store.set_consent(alice, train=True)).consent == Consent(personalize=True, train=True)
    assert (await store.set_consent(alice, personalize=False)).consent == Consent(
        personalize=False, train=True
    )
    assert await store.get_consent(alice) == Consent(personalize=False, train=True)


async def test_preference_cache_is_valid_until_a_new_behavior_arrives(
    store: SqlBehaviorStore, alice: UserKey
) -> None:
    consent = (await store.set_consent(alice, personalize=True)).consent
    await store.record_message(alice, "a", "hi")
    watermark = await store.behavior_watermark(alice)
    cached = CachedPreferences(["cat", "cartoon"], watermark, "smollm2")
    assert await store.store_preferences(alice, cached, consent_at=consent.updated_at)

    cached = await store.cached_preferences(alice)
    assert cached == CachedPreferences(["cat", "cartoon"], watermark, "smollm2")

    await store.record_sticker_use(alice, "a", StickerSent("🐶"))
    assert await store.behavior_watermark(alice) == watermark + 1


async def test_training_examples_follow_the_papers_split_for_consenting_users(
    store: SqlBehaviorStore, alice: UserKey, bob: UserKey
) -> None:
    carol = UserKey.of("console", "carol")
    for user in (alice, bob, carol):
        await store.set_consent(user, personalize=True, train=True)
    for minute, name in enumerate(["cat one", "cat two", "cat three"]):
        await store.record_sticker_use(
            alice, "a", StickerSent("😺", name), sent_at=at(minute), image=name.encode(), message_id=minute
        )
    await store.record_message(alice, "a", "before the last", sent_at=at(1))
    await store.record_message(alice, "a", "after the last", sent_at=at(9))
    await store.record_sticker_use(alice, "a", StickerSent("🙂", "no image"), sent_at=at(10))
    # Bob had images but withdrew training consent; Carol consents but has a single image.
    for minute in range(2):
        await store.record_sticker_use(
            bob, "b", StickerSent("🐶"), sent_at=at(minute), image=b"dog%d" % minute
        )
    await store.set_consent(bob, train=False)
    await store.record_sticker_use(carol, "c", StickerSent("🐸"), image=b"frog")

    examples = [example async for example in store.iter_training_examples()]

    assert [example.user for example in examples] == [alice]
    [example] = examples
    assert await store.read_blob(example.target_image_sha256) == b"cat three"
    assert [item.text or item.sticker.name for item in example.history] == [  # type: ignore[union-attr]
        "cat one",
        "before the last",
        "cat two",
    ]


async def test_generation_records_and_export_are_json_ready(store: SqlBehaviorStore, alice: UserKey) -> None:
    consent = (await store.set_consent(alice, personalize=True, display_name="Alice")).consent
    await store.record_message(alice, "a", "so happy today!", message_id=5)
    record = GenerationRecord(
        user=alice,
        chat="a",
        profile="offline",
        request_text="so happy today!",
        consent_at=consent.updated_at,
        preference_keywords=["cat", "cartoon"],
        target_keywords=["joy", "smile", "jump", "grin", "cheer"],
        mood="joy",
        weight_sets=[(0.0, 4.0), (4.0, 0.0)],
        candidates=[
            {"seed": 1, "d_p": 0.3, "d_t": 0.5, "z": -0.9},
            {"seed": 2, "d_p": 0.6, "d_t": 0.1, "z": -1.4},
        ],
        chosen_index=0,
        models={"llm": "smollm2"},
        timings={"keywords": 0.2, "generate": 1.1},
    )

    generation_id = await store.record_generation(record, image=b"webp bytes")
    exported = json.loads(json.dumps(await store.export_user(alice)))

    assert generation_id is not None and generation_id > 0
    assert exported["user"]["display_name"] == "Alice"
    assert exported["user"]["consent_personalize"] is True
    assert exported["messages"][0]["text"] == "so happy today!"
    [generation] = exported["generations"]
    assert generation["mood"] == "joy"
    assert generation["candidates"][1]["seed"] == 2
    assert await store.read_blob(generation["chosen_sha256"]) == b"webp bytes"
    assert [(blob["sha256"], blob["size"], blob["mime"]) for blob in exported["blobs"]] == [
        (generation["chosen_sha256"], 10, "image/webp")
    ]


async def test_training_runs_promote_one_checkpoint_at_a_time(store: SqlBehaviorStore) -> None:
    assert await store.promoted_checkpoint() is None
    first = await store.start_training_run("v1", {"steps": 10})
    checkpoint_one = await store.put_blob(b"weights one", "application/octet-stream")
    await store.finish_training_run(
        first, status="done", metrics={}, checkpoint_sha256=checkpoint_one, promoted=True
    )
    second = await store.start_training_run("v2", {"steps": 10})
    checkpoint_two = await store.put_blob(b"weights two", "application/octet-stream")
    await store.finish_training_run(
        second, status="done", metrics={}, checkpoint_sha256=checkpoint_two, promoted=True
    )

    assert await store.promoted_checkpoint() == ("v2", checkpoint_two)


def test_naive_timestamps_are_refused() -> None:
    from adapters.store.tables import UTCDateTime

    with pytest.raises(ValueError, match="naive datetime"):
        UTCDateTime().process_bind_param(datetime(2026, 1, 1), dialect=None)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["files", "database"])
async def test_either_blob_store_keeps_bytes_with_their_row_and_drops_them_with_the_last_reference(
    db_url: str, tmp_path: Path, kind: BlobStoreKind, alice: UserKey, bob: UserKey
) -> None:
    store = await SqlBehaviorStore.open(db_url, tmp_path / "blobs", blob_store=kind)
    try:
        for user in (alice, bob):
            await store.set_consent(user, personalize=True, train=True)  # images are kept to train on
            await store.record_sticker_use(
                user, "chat", StickerSent("🐸"), message_id=user.external_id, image=b"shared"
            )
        [use] = await store.recent_history(alice, 5)
        assert use.image_sha256 is not None
        assert await store.read_blob(use.image_sha256) == b"shared"
        assert (await store.blob_file(use.image_sha256)).read_bytes() == b"shared"

        await store.forget_user(alice)
        assert await stored_blobs(store) == {use.image_sha256}  # bob still uses it
        await store.forget_user(bob)
        assert await stored_blobs(store) == set()
    finally:
        await store.close()
