"""Random-weight SD1.5-architecture pipelines and open_clip scorers built from configs, saved once and
reloaded by path, so tests and benchmarks run the exact code path of `sd15` without any download.

Three sizes: `tiny` (diffusers' own test recipe, width 32: the `tiny` profile), `slim` (SD1.5's real
widths where they meet the rest of the code — 768-wide text, 77 tokens, the real tokenizer, the
U-Net's and VAE's first-level channels, the safety checker's config shape — but one layer per block:
the sd15 tests on a CPU), and `full` (SD1.5's published configs: the same FLOPs as the real model,
for the GPU benchmark)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

log = logging.getLogger(__name__)

Size = Literal["tiny", "slim", "full"]
SEED = 0  # the random weights are fixed, so tests can compare pixels across runs and machines
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]  # OpenAI CLIP's image normalisation
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


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


def _unet(size: Size):
    from diffusers import UNet2DConditionModel

    if size == "full":
        return UNet2DConditionModel(cross_attention_dim=768, attention_head_dim=8, sample_size=64)
    if size == "slim":  # SD1.5's first two levels (320, 640 channels, 8 heads), one layer each
        return UNet2DConditionModel(
            block_out_channels=(320, 640),
            layers_per_block=1,
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
            cross_attention_dim=768,
            attention_head_dim=8,
            sample_size=64,
        )
    return UNet2DConditionModel(
        block_out_channels=(4, 8),
        layers_per_block=1,
        sample_size=32,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        norm_num_groups=2,
    )


def _vae(size: Size):
    from diffusers import AutoencoderKL

    if size == "tiny":
        return AutoencoderKL(
            block_out_channels=(4, 8),
            down_block_types=("DownEncoderBlock2D",) * 2,
            up_block_types=("UpDecoderBlock2D",) * 2,
            latent_channels=4,
            norm_num_groups=2,
        )
    # SD1.5's four levels (a latent is 1/8 of the image); slim has one layer per block instead of two.
    return AutoencoderKL(
        block_out_channels=(128, 256, 512, 512),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=2 if size == "full" else 1,
        latent_channels=4,
        sample_size=512,
    )


def _text_encoder(size: Size):
    from transformers import CLIPTextConfig, CLIPTextModel

    if size == "tiny":
        config = CLIPTextConfig(
            hidden_size=32,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            projection_dim=32,
        )
    else:  # CLIP ViT-L/14's text tower, SD1.5's text encoder: 12 layers (slim: 1)
        config = CLIPTextConfig(
            hidden_size=768,
            intermediate_size=3072,
            num_attention_heads=12,
            num_hidden_layers=12 if size == "full" else 1,
            projection_dim=768,
            hidden_act="quick_gelu",
        )
    config.bos_token_id, config.eos_token_id, config.pad_token_id = 49406, 49407, 49407
    return CLIPTextModel(config)


def _safety_checker(size: Size) -> dict[str, Any]:
    """SD's NSFW checker with the real config shape (CLIP ViT-L/14 vision tower, 768-wide projection,
    17 concepts, 3 special-care ones; slim: one vision layer) and its image processor. Its concept
    embeddings and thresholds stay at their initial ones: it flags nothing until a test forces it."""
    if size == "tiny":
        return {"safety_checker": None, "feature_extractor": None}
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPConfig, CLIPImageProcessor

    vision = {
        "hidden_size": 1024,
        "intermediate_size": 4096,
        "num_attention_heads": 16,
        "num_hidden_layers": 24 if size == "full" else 1,
        "patch_size": 14,
        "image_size": 224,
    }
    text = {"hidden_size": 768, "num_attention_heads": 12, "num_hidden_layers": 1}
    checker = StableDiffusionSafetyChecker(
        CLIPConfig(text_config=text, vision_config=vision, projection_dim=768)
    )
    processor = CLIPImageProcessor(
        size={"shortest_edge": 224},
        crop_size={"height": 224, "width": 224},
        image_mean=CLIP_MEAN,
        image_std=CLIP_STD,
    )
    return {"safety_checker": checker, "feature_extractor": processor}


def sd_components(size: Size) -> dict[str, object]:
    """Every part of a StableDiffusionPipeline of `size`, random weights from a fixed seed."""
    from diffusers import PNDMScheduler

    torch.manual_seed(SEED)
    scheduler = PNDMScheduler(  # SD1.5's published scheduler config
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        skip_prk_steps=True,
        steps_offset=1,
        set_alpha_to_one=False,
    )
    return {
        "unet": _unet(size),
        "vae": _vae(size),
        "text_encoder": _text_encoder(size),
        "tokenizer": clip_tokenizer(),
        "scheduler": scheduler,
        "image_encoder": None,
        **_safety_checker(size),
    }


def build_sd_pipeline(folder: Path, *, size: Size = "tiny") -> Path:
    """Save a random SD1.5-architecture pipeline of `size` into `folder` once; later calls reuse it."""
    if (folder / "model_index.json").is_file():
        return folder
    from diffusers import StableDiffusionPipeline

    log.info("building a random %s SD1.5-architecture pipeline in %s", size, folder)
    components = sd_components(size)
    pipeline = StableDiffusionPipeline(
        **components, requires_safety_checker=components["safety_checker"] is not None
    )
    staging = folder.with_name(folder.name + ".partial")
    pipeline.save_pretrained(staging)  # type: ignore[attr-defined]  # mixin method mypy misses
    staging.rename(folder)  # a half-written folder never looks like a model
    return folder


CLIP_CONFIGS: dict[Size, dict[str, Any]] = {
    "tiny": {
        "embed_dim": 32,
        "vision_cfg": {"image_size": 64, "layers": 2, "width": 32, "patch_size": 16, "head_width": 16},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
    },
    # ViT-B-32's widths (the sd15 profile's default scorer); slim: one layer per tower.
    "slim": {
        "embed_dim": 512,
        "vision_cfg": {"image_size": 224, "layers": 1, "width": 768, "patch_size": 32},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 512, "heads": 8, "layers": 1},
    },
    "full": {
        "embed_dim": 512,
        "vision_cfg": {"image_size": 224, "layers": 12, "width": 768, "patch_size": 32},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 512, "heads": 8, "layers": 12},
    },
}


def build_clip_scorer(folder: Path, *, size: Size = "tiny") -> tuple[Path, Path]:
    """Save a random open_clip model of `size` into `folder` once, as a config file and a weights file:
    what PMG_CLIP_MODEL and PMG_CLIP_PRETRAINED take for a model open_clip does not know by name."""
    import open_clip
    from safetensors.torch import save_file

    config_path = folder / f"pmg-{size}-clip.json"
    weights = folder / "open_clip_model.safetensors"
    if not weights.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        config_path.write_text(json.dumps(CLIP_CONFIGS[size], indent=2))
        torch.manual_seed(SEED)
        model = open_clip.CLIP(**CLIP_CONFIGS[size])
        partial = weights.with_suffix(".partial")
        save_file(model.state_dict(), str(partial))
        partial.rename(weights)
    return config_path, weights


def build_tiny_models(cache_dir: Path, *, size: Size = "tiny") -> TinyModels:
    """The random models of `size` under `cache_dir` (PMG_DATA_DIR/models), built on first use."""
    sd_folder = build_sd_pipeline(cache_dir / f"{size}-sd15", size=size)
    clip_config, clip_weights = build_clip_scorer(cache_dir / f"{size}-clip", size=size)
    return TinyModels(sd_folder, str(clip_config), clip_weights)
