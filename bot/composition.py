"""The composition root of stage 2: the profile picks the generator, scorer and safety gate."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from bot.settings import Settings

if TYPE_CHECKING:
    from pmg_engine.mood import SentenceEmbedder
    from pmg_engine.stickers import StickerMaker

log = logging.getLogger(__name__)


def build_sticker_maker(settings: Settings, *, embedder: SentenceEmbedder | None = None) -> StickerMaker:
    """Stage 2 for `settings.profile`; a missing model raises ModelUnavailableError naming its setting.

    `embedder`: stage 1's sentence embedder, shared by the offline scorer instead of a second copy.
    """
    from pmg_engine.diffusion import DiffusionGenerator, DiffusionOptions
    from pmg_engine.model_sources import resolve_open_clip_weights
    from pmg_engine.mood import SentenceEmbedder
    from pmg_engine.safety import KeywordDenyList, NsfwGate
    from pmg_engine.scoring import ClipScorer, Scorer, TextScorer
    from pmg_engine.stickers import StickerMaker

    deny_list = KeywordDenyList(settings.denied_keywords)
    options = DiffusionOptions(steps=settings.sd_steps, guidance_scale=settings.sd_guidance_scale)
    if settings.profile == "offline":
        from pmg_engine.offline_generator import OfflineGenerator

        scorer: Scorer = TextScorer(embedder or SentenceEmbedder(settings.text_embedder_model))
        maker = StickerMaker(
            OfflineGenerator(), scorer, gate=NsfwGate(settings.nsfw_threshold), deny_list=deny_list
        )
    elif settings.profile == "tiny":
        from pmg_engine.tiny_models import build_tiny_models

        tiny = build_tiny_models(settings.model_cache_dir)
        generator = DiffusionGenerator.load(str(tiny.sd_folder), options=options, safety_checker=False)
        maker = StickerMaker(
            generator,
            ClipScorer(tiny.clip_name, tiny.clip_weights),
            gate=NsfwGate(settings.nsfw_threshold),
            deny_list=deny_list,
        )
    else:
        weights = resolve_open_clip_weights(
            settings.clip_model, settings.clip_pretrained, setting="PMG_CLIP_PRETRAINED"
        )
        generator = DiffusionGenerator.load(settings.sd_model, options=options)
        scorer = ClipScorer(settings.clip_model, weights, device=str(generator.pipeline.device))
        maker = StickerMaker(generator, scorer, gate=None, deny_list=deny_list)
    log.info("stage 2 ready: profile %s, %s", settings.profile, maker.models)
    return maker
