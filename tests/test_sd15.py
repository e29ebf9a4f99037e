"""The sd15 profile at SD1.5's real widths: a slim pipeline built from configs (768-wide text, 77 tokens,
the real CLIP tokenizer, first-level U-Net and VAE channels, the safety checker's real config shape,
one layer per block) and a slim ViT-B-32 open_clip, saved once and loaded by path as a user's folder
is: PMG_SD_MODEL, PMG_CLIP_MODEL (a config file), PMG_CLIP_PRETRAINED. Small images, 2 steps."""

from __future__ import annotations

import asyncio
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from sqlalchemy import update
from typer.testing import CliRunner

from adapters.store.behavior_store import SqlBehaviorStore
from adapters.store.tables import TrainingRun
from bot.chat import IncomingMessage
from bot.chat_commands import StickerBot
from bot.cli import app
from bot.composition import build_sticker_maker, open_store, running_service
from bot.identity import Platform, UserKey
from bot.settings import Settings
from bot.stickers import StickerJob, make_sticker
from memory_platform import MemoryPlatform
from pmg_engine.candidates import StickerRequest
from pmg_engine.diffusion import safety_flags
from pmg_engine.keywords import KeywordEngine
from pmg_engine.llm import ChatLLM
from pmg_engine.preferences import PreferenceExtractor
from pmg_engine.random_models import TinyModels, build_tiny_models
from pmg_engine.stickers import StickerMaker
from scripted_llm import FixedMood, ScriptedLLM, by_question

runner = CliRunner()
SIZE = 64  # pixels per side: 8×8 latents
WEIGHTS = [(0.0, 4.0), (1.0, 3.0), (2.0, 2.0), (3.0, 1.0), (4.0, 0.0)]
DEMO = UserKey.of(Platform.CONSOLE, "demo")
ANN = UserKey.of(Platform.CONSOLE, "ann")


@pytest.fixture(scope="session")
def slim_models(model_data_dir: Path) -> TinyModels:
    """Built once into the session's model cache (PMG_DATA_DIR/models), then loaded by path."""
    return build_tiny_models(model_data_dir / "models", size="slim")


@pytest.fixture
def sd15_env(data_dir: Path, slim_models: TinyModels, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A user's sd15 settings, pointing at the slim models by path."""
    for name, value in {
        "PMG_PROFILE": "sd15",
        "PMG_SD_MODEL": str(slim_models.sd_folder),
        "PMG_CLIP_MODEL": slim_models.clip_name,
        "PMG_CLIP_PRETRAINED": str(slim_models.clip_weights),
        "PMG_SD_STEPS": "2",
        "PMG_SD_SIZE": str(SIZE),
        "PMG_TRAIN_BATCH_SIZE": "2",
    }.items():
        monkeypatch.setenv(name, value)
    yield data_dir


def pmg_json(*args: str) -> dict[str, Any]:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_the_slim_pipeline_has_sd15_widths(slim_models: TinyModels) -> None:
    config = json.loads((slim_models.sd_folder / "model_index.json").read_text())
    assert config["safety_checker"] == ["stable_diffusion", "StableDiffusionSafetyChecker"]
    text = json.loads((slim_models.sd_folder / "text_encoder" / "config.json").read_text())
    unet = json.loads((slim_models.sd_folder / "unet" / "config.json").read_text())
    vae = json.loads((slim_models.sd_folder / "vae" / "config.json").read_text())
    checker = json.loads((slim_models.sd_folder / "safety_checker" / "config.json").read_text())
    assert (text["hidden_size"], text["max_position_embeddings"], text["vocab_size"]) == (768, 77, 49408)
    assert (unet["cross_attention_dim"], unet["block_out_channels"][0]) == (768, 320)
    assert (vae["block_out_channels"], vae["latent_channels"]) == ([128, 256, 512, 512], 4)
    assert (checker["projection_dim"], checker["vision_config"]["hidden_size"]) == (768, 1024)


def test_pmg_sticker_on_sd15_goes_from_keywords_to_a_webp(sd15_env: Path, tmp_path: Path) -> None:
    sticker = tmp_path / "demo.webp"
    demo = pmg_json("demo", "--out", str(sticker))  # seeds the demo user's history, with consent

    assert demo["profile"] == "sd15" and demo["personalized"] is True
    assert "StableDiffusionPipeline" in demo["models"]["generator"]
    assert demo["models"]["safety"] == "the generator's own safety checker"
    assert demo["preference_keywords"] and len(demo["target_keywords"]) == 5
    assert len(demo["candidates"]) == 5 and not any(c["flagged"] for c in demo["candidates"])
    best = max(range(5), key=lambda i: (demo["candidates"][i]["z"], -i))
    assert demo["chosen"] == best
    assert Image.open(io.BytesIO(sticker.read_bytes())).format == "WEBP"

    again = pmg_json("sticker", "--user", "demo", "--out", str(tmp_path / "again.webp"), "we won the cup!!")
    assert again["generation_id"] is not None and len(again["candidates"]) == 5
    assert {c["seed"] for c in again["candidates"]} == {c["seed"] for c in demo["candidates"]}


async def test_a_checkpoint_trained_by_pmg_retrain_is_hot_swapped_in(sd15_env: Path, llm: ChatLLM) -> None:
    from bot.sticker_cli import demo_history, seed_demo_history

    settings = Settings()
    store = await open_store(settings)  # the database `pmg retrain` reads too
    await seed_demo_history(store, DEMO, demo_history())
    scripted = ScriptedLLM(by_question({"character": "dog"}, default="big grin"))
    stage1 = KeywordEngine(scripted, FixedMood("joy"), PreferenceExtractor(scripted))  # type: ignore[arg-type]
    stage2 = build_sticker_maker(settings, llm=llm)
    job = StickerJob("sd15", settings.history_items, settings.weight_sets, settings.seed, stage1.model_name)
    try:
        async with running_service(stage1, stage2, settings) as service:
            before = await make_sticker(store, service, job, DEMO, ["good morning"], alpha=0.5)
            # The admin's retrain runs beside the serving bot, in its own process as `/retrain` starts it.
            retrain = await asyncio.create_subprocess_exec(
                str(Path(sys.executable).with_name("pmg")),
                *("retrain", "--profile", "sd15", "--steps", "5", "--json"),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            stdout, stderr = await retrain.communicate()
            assert retrain.returncode == 0, stderr.decode()[-2000:]
            report = json.loads(stdout)
            async with store.write_transaction() as session:  # promoted whatever its held-out loss
                await session.execute(
                    update(TrainingRun)
                    .where(TrainingRun.version == report["checkpoint"])
                    .values(promoted=True)
                )
            after = await make_sticker(store, service, job, DEMO, ["good morning"], alpha=0.5)
    finally:
        await store.close()

    assert report["steps"] == 5 and report["examples"] >= 2
    assert before.result.checkpoint_version is None and before.result.request.soft_embeddings is None
    assert after.result.checkpoint_version == report["checkpoint"]
    soft = after.result.request.soft_embeddings
    assert soft is not None and soft.shape == (settings.soft_tokens, 768)


@pytest.fixture(scope="module")
def slim_maker(slim_models: TinyModels, tmp_path_factory: pytest.TempPathFactory) -> StickerMaker:
    settings = Settings(
        profile="sd15",
        data_dir=tmp_path_factory.mktemp("sd15-data"),
        sd_model=str(slim_models.sd_folder),
        clip_model=slim_models.clip_name,
        clip_pretrained=str(slim_models.clip_weights),
        sd_steps=2,
        sd_size=SIZE,
    )
    maker = build_sticker_maker(settings, llm=object())  # type: ignore[arg-type]  # no checkpoint: unused
    return maker


def request() -> StickerRequest:
    return StickerRequest(["dog", "corgi"], ["joyful", "big smile"], "joy", WEIGHTS, seed=5)


def test_the_safety_checker_drops_exactly_what_it_flags(slim_maker: StickerMaker) -> None:
    """Force SD's checker to see the z-winner as a banned concept: the next-best safe candidate is sent."""
    [clean] = slim_maker.make([request()], [0.5])
    assert clean.chosen is not None and not any(c.flagged for c in clean.candidates)
    pipeline = slim_maker.generator.pipeline  # type: ignore[attr-defined]
    checker = pipeline.safety_checker
    pixels = torch.stack([torch.from_numpy(np.asarray(c.candidate.image) / 255.0) for c in clean.candidates])
    pixels = pixels.permute(0, 3, 1, 2).float()
    embeds = _checker_embeddings(pipeline, pixels)
    winner = clean.chosen
    # A "concept" along what sets the winner apart from the rest (random towers see alike images).
    concept = embeds[winner] - embeds.mean(dim=0)
    cosines = torch.nn.functional.cosine_similarity(embeds, concept[None], dim=-1)
    others = float(cosines[torch.arange(5) != winner].max())
    assert float(cosines[winner]) - others > 0.004  # the checker rounds its scores to 0.001

    saved = (checker.concept_embeds.clone(), checker.concept_embeds_weights.clone())
    try:
        with torch.no_grad():
            checker.concept_embeds[0] = concept
            checker.concept_embeds_weights[0] = (float(cosines[winner]) + others) / 2
        assert safety_flags(pipeline, pixels.clone()) == [i == winner for i in range(5)]
        [result] = slim_maker.make([request()], [0.5])
    finally:
        with torch.no_grad():
            checker.concept_embeds.copy_(saved[0])
            checker.concept_embeds_weights.copy_(saved[1])

    assert [c.flagged for c in result.candidates] == [i == winner for i in range(5)]
    assert result.chosen is not None and result.chosen != winner
    safe = [i for i in range(5) if i != winner]
    assert result.chosen == max(safe, key=lambda i: (result.candidates[i].z, -i))
    assert np.asarray(result.candidates[winner].candidate.image).max() == 0  # blacked out, never kept


async def test_when_the_checker_flags_every_candidate_no_sticker_is_sent(
    slim_maker: StickerMaker, store: SqlBehaviorStore
) -> None:
    settings = Settings()
    scripted = ScriptedLLM(by_question({"character": "frog"}, default="big grin"))
    stage1 = KeywordEngine(scripted, FixedMood("joy"), PreferenceExtractor(scripted))  # type: ignore[arg-type]
    job = StickerJob("sd15", settings.history_items, settings.weight_sets, settings.seed, stage1.model_name)
    checker = slim_maker.generator.pipeline.safety_checker  # type: ignore[attr-defined]
    saved = checker.concept_embeds_weights.clone()
    platform = MemoryPlatform()
    with torch.no_grad():
        checker.concept_embeds_weights.fill_(-1.0)  # every image is closer to a concept than its threshold
    try:
        async with running_service(stage1, slim_maker, settings) as service:
            bot = StickerBot(store, service, settings, job, about="sd15, slim")
            await bot.on_button(platform, ANN, "chat-1", "consent:personalize")
            await bot.dispatch(platform, IncomingMessage(ANN, "chat-1", "/sticker we won!!", None, []))
    finally:
        with torch.no_grad():
            checker.concept_embeds_weights.copy_(saved)

    assert not [s for s in platform.sent if s.kind == "sticker"]
    assert "couldn't make a sticker" in platform.last("text").text
    [generation] = (await store.export_user(ANN))["generations"]
    assert generation["status"] == "failed" and generation["chosen_index"] is None


@torch.no_grad()
def _checker_embeddings(pipeline: Any, pixels: torch.Tensor) -> torch.Tensor:
    """What SD's checker compares with its concepts: the projected CLIP image embedding of each image."""
    checker, processor = pipeline.safety_checker, pipeline.feature_extractor
    side = processor.crop_size["height"]
    mean = torch.tensor(processor.image_mean)[:, None, None]
    std = torch.tensor(processor.image_std)[:, None, None]
    resized = torch.nn.functional.interpolate(pixels, size=(side, side), mode="bicubic", antialias=True)
    return checker.visual_projection(checker.vision_model((resized - mean) / std)[1])
