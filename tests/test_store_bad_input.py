"""Bad input reaches the store as clean rows or clear errors; nothing already stored is lost."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from store_helpers import snapshot

from adapters.store import schema
from adapters.store.behavior_store import SqlBehaviorStore
from adapters.store.database import create_engine, dialect_of
from adapters.store.errors import (
    BlobTooLargeError,
    NotADatabaseError,
    SchemaTooNewError,
    UnsupportedDatabaseError,
)
from bot.identity import UnknownPlatformError, UserKey
from pmg_engine.behaviors import StickerSent

pytestmark = pytest.mark.both_backends


@pytest.fixture(autouse=True)
async def alice_consents(store: SqlBehaviorStore, alice: UserKey) -> None:
    """The store keeps behaviors only of users who consent (test_store_consent.py: everyone else)."""
    await store.set_consent(alice, personalize=True, train=True)


async def test_over_long_text_is_stored_as_a_flagged_prefix(store: SqlBehaviorStore, alice: UserKey) -> None:
    recorded = await store.record_message(alice, "chat", "x" * 1_000_000)

    assert recorded.truncated
    [message] = (await store.export_user(alice))["messages"]
    assert message["text"] == "x" * store.max_text_chars
    assert message["text_truncated"] is True


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("lone \ud800 surrogate", "lone \ufffd surrogate"),
        ("pair \ud83d\ude3a joined", "pair 😺 joined"),
        (b"bad \xff\xfe utf-8", "bad \ufffd\ufffd utf-8"),
        ("nul\x00byte", "nulbyte"),
    ],
)
async def test_undecodable_text_is_repaired_not_rejected(
    store: SqlBehaviorStore, alice: UserKey, raw: str | bytes, stored: str
) -> None:
    await store.record_message(alice, "chat", raw)

    assert [item.text for item in await store.recent_history(alice, 5)] == [stored]


def test_unknown_platform_is_a_clear_error() -> None:
    with pytest.raises(UnknownPlatformError, match=r"unknown platform 'icq'.*telegram, discord, console"):
        UserKey.of("icq", 5)


async def test_duplicate_platform_message_ids_are_idempotent(store: SqlBehaviorStore, alice: UserKey) -> None:
    first = await store.record_message(alice, "chat", "hello", message_id=77)
    again = await store.record_message(alice, "chat", "hello (edited)", message_id="77")
    elsewhere = await store.record_message(alice, "other chat", "same id, other chat", message_id=77)
    sticker = await store.record_sticker_use(alice, "chat", StickerSent("😺"), message_id=78)
    sticker_again = await store.record_sticker_use(alice, "chat", StickerSent("😺"), message_id=78)

    assert (first.created, again.created, elsewhere.created) == (True, False, True)
    assert again.id == first.id
    assert (sticker.created, sticker_again.created, sticker_again.id) == (True, False, sticker.id)
    assert (await store.counts())["messages"] == 2
    assert await store.behavior_watermark(alice) == 3  # repeats do not invalidate the preference cache


async def test_oversized_sticker_image_is_refused_and_nothing_is_lost(
    store: SqlBehaviorStore, alice: UserKey
) -> None:
    await store.record_message(alice, "chat", "kept")

    with pytest.raises(BlobTooLargeError, match="PMG_MAX_BLOB_BYTES"):
        await store.record_sticker_use(
            alice, "chat", StickerSent("😺"), image=b"\0" * (store.max_blob_bytes + 1)
        )

    assert [item.text for item in await store.recent_history(alice, 5)] == ["kept"]


async def test_a_file_that_is_not_sqlite_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "mine" / "notes.db"
    path.parent.mkdir()
    content = b"these are my notes, not a database\n" * 100
    path.write_bytes(content)

    with pytest.raises(NotADatabaseError, match="not a SQLite database; it was left untouched"):
        await SqlBehaviorStore.open(f"sqlite+aiosqlite:///{path}", tmp_path / "blobs")

    assert path.read_bytes() == content
    assert sorted(p.name for p in path.parent.iterdir()) == ["notes.db"]


async def test_a_database_from_a_newer_version_is_refused_and_left_untouched(
    db_url: str, tmp_path: Path
) -> None:
    await schema.upgrade(db_url)
    engine = create_engine(db_url)
    async with engine.begin() as connection:
        await connection.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    await engine.dispose()
    before = await snapshot(db_url)

    with pytest.raises(SchemaTooNewError, match="'9999_from_the_future', unknown to this pmg-stickers"):
        await SqlBehaviorStore.open(db_url, tmp_path / "blobs")

    assert await snapshot(db_url) == before


@pytest.mark.parametrize(
    "url",
    [
        "mysql+aiomysql://localhost/pmg",
        "postgresql://localhost/pmg",  # not the asyncpg driver
        "postgresql+asyncpg://localhost",  # no database
        "sqlite+aiosqlite://",
        "sqlite+aiosqlite:///:memory:",
    ],
)
def test_unsupported_database_urls_name_the_setting(url: str) -> None:
    with pytest.raises(UnsupportedDatabaseError, match="PMG_DB_URL"):
        dialect_of(url)
