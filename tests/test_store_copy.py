"""`pmg db copy`: a SQLite store (rows and blobs) into an empty PostgreSQL database, verified, with the
source left as it was; a target that is not empty is refused."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from store_helpers import snapshot, stored_blobs
from typer.testing import CliRunner

from adapters.store.behavior_store import SqlBehaviorStore
from bot.behavior import CachedPreferences, GenerationRecord
from bot.cli import app
from bot.identity import UserKey
from pmg_engine.behaviors import StickerSent

pytestmark = [pytest.mark.both_backends, pytest.mark.postgresql_only]


async def filled_sqlite_store(path: Path, alice: UserKey, bob: UserKey) -> str:
    url = f"sqlite+aiosqlite:///{path / 'pmg.db'}"
    async with await SqlBehaviorStore.open(url, path / "blobs") as store:
        consents = {}
        for user in (alice, bob):
            consents[user] = (await store.set_consent(user, personalize=True, train=True)).consent.updated_at
            await store.record_message(
                user, "group", f"hello from {user.external_id}", message_id=user.external_id
            )
            await store.record_sticker_use(
                user, "group", StickerSent("🐸"), message_id=f"s{user.external_id}", image=b"frog"
            )
        await store.record_generation(
            GenerationRecord(user=alice, chat="group", profile="offline", consent_at=consents[alice]),
            image=b"made for alice",
        )
        await store.store_preferences(
            alice, CachedPreferences(["frog"], 2, "llm"), consent_at=consents[alice]
        )
        run = await store.start_training_run("20261201-v1", {"steps": 3})
        checkpoint = await store.put_blob(b"checkpoint bytes", "application/octet-stream")
        await store.finish_training_run(
            run, status="done", metrics={"loss": 0.5}, checkpoint_sha256=checkpoint, promoted=True
        )
    return url


async def test_copy_moves_rows_and_blobs_and_leaves_the_source_as_it_was(
    db_url: str, tmp_path: Path, alice: UserKey, bob: UserKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = await filled_sqlite_store(tmp_path / "source", alice, bob)
    before = await snapshot(source)
    monkeypatch.setenv("PMG_DATA_DIR", str(tmp_path / "source"))

    command = ["db", "copy", "--from", source, "--to", db_url]
    copied = await asyncio.to_thread(CliRunner().invoke, app, command)  # the CLI runs its own event loop
    again = await asyncio.to_thread(CliRunner().invoke, app, command)

    assert copied.exit_code == 0, copied.output
    assert "3 blobs, every hash checked" in copied.output
    assert again.exit_code == 1 and "is not empty" in again.output
    assert await snapshot(source) == before
    old = SqlBehaviorStore.attach(source, tmp_path / "source" / "blobs")
    async with await SqlBehaviorStore.open(db_url, tmp_path / "cache") as new:
        assert await new.counts() == await old.counts()
        assert await stored_blobs(new) == await stored_blobs(old)
        for user in (alice, bob):
            moved, kept = await new.export_user(user), await old.export_user(user)
            moved.pop("exported_at"), kept.pop("exported_at")  # when each export was made
            assert moved == kept
        assert await new.promoted_checkpoint() == await old.promoted_checkpoint()
        # ids go on after the copied ones
        await new.record_message(alice, "group", "after the move", message_id="later")
        assert [b.text for b in await new.recent_history(alice, 5) if b.kind == "message"][
            -1
        ] == "after the move"
    await old.close()
