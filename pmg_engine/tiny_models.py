"""Random-weight SD1.5-architecture pipelines and open_clip scorers built from configs, saved once and
reloaded by path, so the `tiny` profile (and the GPU benchmark) runs the exact code path of `sd15`."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

log = logging.getLogger(__name__)

TINY_CLIP_NAME = "pmg-tiny-clip"
SEED = 0  # the random weights are fixed, so tests can compare pixels across runs and machines


@dataclass(frozen=True)
class TinyModels:
    """Where the built models lie: a diffusers folder and an open_clip config name + weights file."""

    sd_folder: Path
    clip_name: str
    clip_weights: Path


def clip_tokenizer():
    """The real CLIP BPE tokenizer (49,408 tokens), rebuilt offline from the vocab file open_clip ships.

    transformers 5 ignores `vocab_file=`: the vocab and merges are passed as objects.
    """
    from open_clip.tokenizer import SimpleTokenizer
    from transformers import CLIPTokenizer

    simple = SimpleTokenizer()
    vocab = dict(simple.encoder)
    vocab["<|startoftext|>"] = vocab.pop("<start_of_text>")
    vocab["<|endoftext|>"] = vocab.pop("<end_of_text>")
    merges = sorted(simple.bpe_ranks, key=simple.bpe_ranks.__getitem__)
    return CLIPTokenizer(vocab=vocab, merges=merges)


def _sd_components(full_size: bool) -> dict[str, object]:
    """The diffusers test recipe (`get_dummy_components`), or SD1.5's own configs with random weights."""
    from diffusers import AutoencoderKL, PNDMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(SEED)
    if full_size:  # SD v1.5's published configs: the same FLOPs as the real model
        unet = UNet2DConditionModel(cross_attention_dim=768, attention_head_dim=8, sample_size=64)
        vae = AutoencoderKL(
            block_out_channels=(128, 256, 512, 512),
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            layers_per_block=2,
            latent_channels=4,
            sample_size=512,
        )
        text_config = CLIPTextConfig(
            hidden_size=768,
            intermediate_size=3072,
            num_attention_heads=12,
            num_hidden_layers=12,
            projection_dim=768,
            hidden_act="quick_gelu",
        )
    else:
        unet = UNet2DConditionModel(
            block_out_channels=(4, 8),
            layers_per_block=1,
            sample_size=32,
            in_channels=4,
            out_channels=4,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            cross_attention_dim=32,
            norm_num_groups=2,
        )
        vae = AutoencoderKL(
            block_out_channels=(4, 8),
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D",) * 2,
            up_block_types=("UpDecoderBlock2D",) * 2,
            latent_channels=4,
            norm_num_groups=2,
        )
        text_config = CLIPTextConfig(
            hidden_size=32,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            projection_dim=32,
        )
    text_config.bos_token_id, text_config.eos_token_id, text_config.pad_token_id = 49406, 49407, 49407
    scheduler = PNDMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        skip_prk_steps=True,
        steps_offset=1,
        set_alpha_to_one=False,
    )
    return {
        "unet": unet,
        "vae": vae,
        "text_encoder": CLIPTextModel(text_config),
        "tokenizer": clip_tokenizer(),
        "scheduler": scheduler,
        "safety_checker": None,
        "feature_extractor": None,
        "image_encoder": None,
    }


def build_sd_pipeline(folder: Path, *, full_size: bool = False) -> Path:
    """Save a random SD1.5-architecture pipeline into `folder` once; later calls reuse it."""
    if (folder / "model_index.json").is_file():
        return folder
    from diffusers import StableDiffusionPipeline

    log.info(
        "building a random %s SD1.5-architecture pipeline in %s", "full-size" if full_size else "tiny", folder
    )
    pipeline = StableDiffusionPipeline(**_sd_components(full_size), requires_safety_checker=False)
    staging = folder.with_name(folder.name + ".partial")
    pipeline.save_pretrained(staging)  # type: ignore[attr-defined]  # mixin method mypy misses
    staging.rename(folder)  # a half-written folder never looks like a model
    return folder


TINY_CLIP_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 32, "patch_size": 16, "head_width": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}


def build_clip_scorer(folder: Path) -> tuple[str, Path]:
    """Save a tiny random open_clip model (config + weights) into `folder` once; register its config."""
    import open_clip

    config_path = folder / f"{TINY_CLIP_NAME}.json"
    weights = folder / "open_clip_model.safetensors"
    if not weights.is_file():
        from safetensors.torch import save_file

        folder.mkdir(parents=True, exist_ok=True)
        config_path.write_text(json.dumps(TINY_CLIP_CONFIG, indent=2))
        torch.manual_seed(SEED)
        model = open_clip.CLIP(**TINY_CLIP_CONFIG)
        partial = weights.with_suffix(".partial")
        save_file(model.state_dict(), str(partial))
        partial.rename(weights)
    open_clip.add_model_config(config_path)
    return TINY_CLIP_NAME, weights


def build_tiny_models(cache_dir: Path) -> TinyModels:
    """The `tiny` profile's models under `cache_dir` (PMG_DATA_DIR/models), built on first use."""
    sd_folder = build_sd_pipeline(cache_dir / "tiny-sd15")
    clip_name, clip_weights = build_clip_scorer(cache_dir / "tiny-clip")
    return TinyModels(sd_folder, clip_name, clip_weights)
