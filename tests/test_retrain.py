"""The admin retrain job from the store, on the tiny profile with the real SmolLM2: data, held-out check,
checkpoint, promotion, hot swap into serving; and the refusals."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from adapters.store.behavior_store import SqlBehaviorStore
from bot.behavior import GenerationRecord
from bot.cli import app
from bot.identity import Platform, UserKey
from bot.retrain import CHOSEN_WEIGHT, RetrainError, RetrainLock, load_examples, retrain
from bot.settings import Settings
from bot.sticker_cli import demo_history, seed_demo_history
from bot.stickers import StickerJob, make_sticker
from pmg_engine.keywords import KeywordEngine
from pmg_engine.llm import ChatLLM
from pmg_engine.preferences import PreferenceExtractor
from pmg_engine.sticker_art.composer import plain_sticker
from scripted_llm import FixedMood, ScriptedLLM, by_question

runner = CliRunner()
DEMO = UserKey.of(Platform.CONSOLE, "demo")


@pytest.fixture
def settings(tmp_path: Path, llm: ChatLLM, llm_cache_dir: Path) -> Settings:
    """The tiny profile in a data dir whose LLM cache is the session's converted SmolLM2."""
    data_dir = tmp_path / "data"
    (data_dir / "models").mkdir(parents=True)
    (data_dir / "models" / "llm").symlink_to(llm_cache_dir, target_is_directory=True)
    return Settings(profile="tiny", data_dir=data_dir, train_batch_size=2, train_val_fraction=0.25)


@pytest.fixture
async def demo_store(settings: Settings) -> SqlBehaviorStore:
    store = await SqlBehaviorStore.open(settings.database_url, settings.blob_dir)
    await seed_demo_history(store, DEMO, demo_history())
    yield store  # type: ignore[misc]
    await store.close()


async def test_retrain_trains_checks_stores_and_promotes_only_if_better(
    demo_store: SqlBehaviorStore, settings: Settings
) -> None:
    steps_seen: list[int] = []
    report = await retrain(demo_store, settings, steps=6, progress=lambda p: steps_seen.append(p.step))

    assert (report.examples, report.users, report.validation_users) == (4, 4, 1)
    assert report.steps == 6 and steps_seen == [1, 2, 3, 4, 5, 6]
    assert report.loss_first is not None and report.loss_last is not None
    assert report.val_loss_before is not None and report.val_loss_after is not None
    assert report.promoted == (report.val_loss_after < report.val_loss_before)
    promoted = await demo_store.promoted_checkpoint()
    assert (promoted is not None and promoted[0] == report.checkpoint) == report.promoted


async def test_a_promoted_checkpoint_serves_the_next_sticker(
    demo_store: SqlBehaviorStore, settings: Settings, llm: ChatLLM
) -> None:
    from bot.composition import build_sticker_maker, running_service

    report = await retrain(demo_store, settings, steps=2)
    runs = await demo_store.export_user(DEMO)
    assert runs["user"] is not None
    # Promote it whatever its held-out loss, to see the swap (the rule itself is tested above).
    async with demo_store.write_transaction() as session:
        from sqlalchemy import update

        from adapters.store.tables import TrainingRun

        await session.execute(
            update(TrainingRun).where(TrainingRun.version == report.checkpoint).values(promoted=True)
        )
    scripted = ScriptedLLM(by_question({}, default="big grin"))
    stage1 = KeywordEngine(scripted, FixedMood("joy"), PreferenceExtractor(scripted))  # type: ignore[arg-type]
    stage2 = build_sticker_maker(settings, llm=llm)
    job = StickerJob("tiny", settings.history_items, settings.weight_sets, settings.seed, stage1.model_name)

    async with running_service(stage1, stage2, settings) as service:
        reply = await make_sticker(demo_store, service, job, DEMO, ["we won!"], alpha=0.5)

    assert reply.result.checkpoint_version == report.checkpoint
    assert (
        reply.result.request.soft_embeddings is not None
        and reply.result.request.soft_embeddings.shape == (4, 32)
    )
    generations = (await demo_store.export_user(DEMO))["generations"]
    assert generations[-1]["checkpoint_version"] == report.checkpoint


async def test_refusals_say_what_to_do(tmp_path: Path, settings: Settings, store: SqlBehaviorStore) -> None:
    with pytest.raises(RetrainError, match="no training examples"):
        await retrain(store, settings, steps=1)
    with pytest.raises(RetrainError, match="offline profile"):
        await retrain(store, settings.model_copy(update={"profile": "offline"}), steps=1)
    with (
        RetrainLock(settings.data_dir),
        pytest.raises(RetrainError, match="already running"),
        RetrainLock(settings.data_dir),
    ):
        pass
    with pytest.raises(RetrainError, match="nothing to resume"):
        await seed_demo_history(store, DEMO, demo_history())
        await retrain(store, settings, steps=1, resume=True)


def test_pmg_retrain_prints_one_json_object(
    demo_store: SqlBehaviorStore, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PMG_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("PMG_TRAIN_BATCH_SIZE", "2")
    result = runner.invoke(app, ["retrain", "--profile", "tiny", "--steps", "3", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    for field in (
        "examples",
        "examples_last_sticker",
        "examples_chosen",
        "chosen_weight",
        "users",
        "steps",
        "loss_first",
        "loss_last",
        "val_loss_before",
        "val_loss_after",
        "checkpoint",
        "promoted",
    ):
        assert field in report
    assert report["examples"] == 4 and report["steps"] == 3


async def test_a_skipped_example_is_counted_never_named(demo_store: SqlBehaviorStore) -> None:
    """Issue 12 item 7: the notes are stored with the training run, which outlives a user's /forget."""
    [example, *_] = [example async for example in demo_store.iter_training_examples()]
    (await demo_store.blob_file(example.target_image_sha256)).write_bytes(b"damaged on disk")
    notes: list[str] = []

    examples = await load_examples(demo_store, history_items=10, notes=notes)

    assert len(examples.last) == 3 and examples.chosen == []
    assert notes == ["skipped 1 example(s): their sticker image is unreadable"]
    assert example.user.external_id not in " ".join(notes)


async def test_stickers_a_user_chose_train_too_at_their_weight(
    demo_store: SqlBehaviorStore, settings: Settings
) -> None:
    consent = await demo_store.get_consent(DEMO)
    chosen_art = plain_sticker("🐶", 256)
    buffer = io.BytesIO()
    chosen_art.save(buffer, "WEBP")
    record = GenerationRecord(
        user=DEMO,
        chat="demo",
        profile="tiny",
        preference_keywords=["corgi", "pastel"],
        consent_at=consent.updated_at,
    )
    generation = await demo_store.record_generation(record, candidate_images={3: buffer.getvalue()})
    assert generation is not None
    assert await demo_store.record_feedback(DEMO, generation, "chosen", candidate_index=3, weights=(3.0, 1.0))

    examples = await load_examples(demo_store, history_items=10, notes=[])
    [chosen] = examples.chosen
    assert chosen.keywords == ["corgi", "pastel"] and chosen.weight == CHOSEN_WEIGHT < 1.0
    assert chosen.image.size == chosen_art.size

    report = await retrain(demo_store, settings, steps=2)
    assert (report.examples_last_sticker, report.examples_chosen, report.examples) == (4, 1, 5)
