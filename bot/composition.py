"""The composition root of stage 2: the profile picks the generator, scorer and safety gate."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from bot.settings import Settings

if TYPE_CHECKING:
    from adapters.store.behavior_store import SqlBehaviorStore
    from adapters.store.database import ServerOptions
    from bot.personalization import Stage1
    from bot.ray_backend import RayStickerBackend
    from bot.service import StickerService
    from bot.sticker_engine import EngineOutcome, EngineRequest
    from bot.stickers import Stage2, StickerJob
    from bot.store import BehaviorStore
    from pmg_engine.diffusion import DiffusionGenerator
    from pmg_engine.llm import ChatLLM
    from pmg_engine.mood import SentenceEmbedder
    from pmg_engine.stickers import StickerMaker

log = logging.getLogger(__name__)


def diffusion_generator(settings: Settings) -> DiffusionGenerator:
    """The tiny profile's random pipeline (built on first use) or SD1.5 from PMG_SD_MODEL."""
    from pmg_engine.diffusion import DiffusionGenerator, DiffusionOptions
    from pmg_engine.random_models import build_sd_pipeline

    options = DiffusionOptions(
        steps=settings.sd_steps,
        guidance_scale=settings.sd_guidance_scale,
        scheduler=settings.sd_scheduler,
        size=settings.sd_size,
    )
    if settings.profile == "tiny":
        folder = build_sd_pipeline(settings.model_cache_dir / "tiny-sd15")
        return DiffusionGenerator.load(str(folder), options=options, safety_checker=False)
    return DiffusionGenerator.load(settings.sd_model, options=options)


def prepare_batches(generator: DiffusionGenerator, settings: Settings) -> int:
    """At start-up, never during a request: on a GPU the largest batch that fits (PMG_SD_FIT_BATCH),
    then the U-Net compiled for every batch size up to it (PMG_SD_COMPILE). Returns the batch limit."""
    max_batch = settings.max_batch
    if settings.sd_fit_batch and generator.pipeline.device.type == "cuda":
        max_batch = generator.largest_batch(max_batch, settings.weight_sets)
        if max_batch < settings.max_batch:
            log.warning("GPU memory holds %d requests per batch: PMG_MAX_BATCH lowered to it", max_batch)
    if settings.sd_compile:
        generator.compile(max_batch, settings.weight_sets)
    return max_batch


def build_sticker_maker(
    settings: Settings, *, embedder: SentenceEmbedder | None = None, llm: ChatLLM | None = None
) -> StickerMaker:
    """Stage 2 for `settings.profile`; a missing model raises ModelUnavailableError naming its setting.

    `embedder`, `llm`: stage 1's, shared instead of second copies (the MiniLM scorer of the offline
    profile; the base of the bias-correction LLM for the diffusion profiles).
    """
    from pmg_engine.llm import ChatLLM
    from pmg_engine.model_sources import resolve_open_clip_weights
    from pmg_engine.mood import SentenceEmbedder
    from pmg_engine.safety import KeywordDenyList, NsfwGate
    from pmg_engine.scoring import ClipScorer, Scorer, TextScorer
    from pmg_engine.soft_prompt import SoftPreferences
    from pmg_engine.stickers import StickerMaker

    deny_list = KeywordDenyList(settings.denied_keywords)
    if settings.profile == "offline":
        from pmg_engine.offline_generator import OfflineGenerator

        scorer: Scorer = TextScorer(embedder or SentenceEmbedder(settings.text_embedder_model))
        maker = StickerMaker(
            OfflineGenerator(), scorer, gate=NsfwGate(settings.nsfw_threshold), deny_list=deny_list
        )
    else:
        generator = diffusion_generator(settings)
        if settings.profile == "tiny":
            from pmg_engine.random_models import build_clip_scorer

            clip_config, clip_weights = build_clip_scorer(settings.model_cache_dir / "tiny-clip")
            clip_model = str(clip_config)
            gate = NsfwGate(settings.nsfw_threshold)
        else:
            clip_model = settings.clip_model
            clip_weights = resolve_open_clip_weights(
                clip_model, settings.clip_pretrained, setting="PMG_CLIP_PRETRAINED"
            )
            gate = None  # SD's own safety checker runs on the generator's batch
        scorer = ClipScorer(clip_model, clip_weights, device=str(generator.pipeline.device))
        soft = SoftPreferences(
            llm
            or ChatLLM.load(settings.llm_model, settings.model_cache_dir / "llm", device=settings.llm_device),
            tokens=settings.soft_tokens,
            prefixes=settings.soft_prefixes,
            text_width=generator.pipeline.text_encoder.config.hidden_size,
        )
        maker = StickerMaker(generator, scorer, gate=gate, deny_list=deny_list, soft=soft)
        maker.max_batch = prepare_batches(generator, settings)
    log.info("stage 2 ready: profile %s, %s", settings.profile, maker.models)
    return maker


def sticker_job(settings: Settings) -> StickerJob:
    """How this installation makes stickers, from its settings."""
    from bot.stickers import StickerJob
    from pmg_engine.preferences import keyword_model_name

    return StickerJob(
        settings.profile,
        settings.history_items,
        settings.weight_sets,
        settings.seed,
        keyword_model_name(settings.llm_model, settings.preference_attributes),
    )


@asynccontextmanager
async def scratch_store(folder: Path) -> AsyncIterator[BehaviorStore]:
    """A throwaway SQLite store in `folder` (evaluations record labelled users there, not in the bot's)."""
    from adapters.store.behavior_store import SqlBehaviorStore

    store = await SqlBehaviorStore.open(f"sqlite+aiosqlite:///{folder / 'scratch.db'}", folder / "blobs")
    try:
        yield store
    finally:
        await store.close()


def server_options(settings: Settings) -> ServerOptions:
    """How the store connects to a PostgreSQL server (unused on SQLite)."""
    from adapters.store.database import ServerOptions

    return ServerOptions(settings.db_pool_size, settings.db_statement_timeout_s, settings.db_ssl_mode)


async def open_store(settings: Settings) -> SqlBehaviorStore:
    """The behavior store the settings name, with their limits on message text and files; the data
    dir (database, blobs, users' files) is made readable by its owner alone."""
    from adapters.store.behavior_store import SqlBehaviorStore
    from bot.user_files import private_folder

    private_folder(settings.data_dir)
    return await SqlBehaviorStore.open(
        settings.database_url,
        settings.blob_dir,
        max_text_chars=settings.max_message_chars,
        max_blob_bytes=settings.max_blob_bytes,
        server=server_options(settings),
        blob_store=settings.blob_store,
    )


@asynccontextmanager
async def running_service(
    stage1: Stage1, stage2: Stage2, settings: Settings
) -> AsyncIterator[StickerService[EngineRequest, EngineOutcome]]:
    """The in-process sticker service over loaded stages, sized by the settings, stopped on exit."""
    from bot.service import StickerService
    from bot.sticker_engine import StickerEngine

    engine = StickerEngine.loaded(stage1, stage2, settings.weight_sets)
    engine.load()
    service: StickerService[EngineRequest, EngineOutcome] = StickerService(
        engine,
        queue_max=settings.queue_max,
        batch_window_s=settings.batch_window_ms / 1000,
        max_batch=engine.batch_limit(settings.max_batch),
    )
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


@asynccontextmanager
async def sticker_backend(
    settings: Settings, stages: tuple[Stage1, Stage2] | None
) -> AsyncIterator[StickerService[EngineRequest, EngineOutcome] | RayStickerBackend]:
    """The in-process service over loaded `stages`, or (none loaded: PMG_BACKEND=ray) the front of the
    Ray Serve deployment; either is stopped on exit. A cluster that cannot be reached raises
    BackendUnavailable with what to do."""
    if stages is not None:
        async with running_service(*stages, settings) as service:
            yield service
        return
    from bot.ray_backend import RayStickerBackend

    backend = await asyncio.to_thread(RayStickerBackend.connect, settings)
    try:
        yield backend
    finally:
        await backend.stop()


async def backend_models(
    backend: StickerService[EngineRequest, EngineOutcome] | RayStickerBackend,
    stages: tuple[Stage1, Stage2] | None,
) -> dict[str, str]:
    """What draws the stickers (LLM, generator, scorer, safety), for /about."""
    if stages is None:
        from bot.ray_backend import RayStickerBackend

        assert isinstance(backend, RayStickerBackend)
        return await backend.models()
    stage1, stage2 = stages
    return {"llm": stage1.model_name, **stage2.models}
