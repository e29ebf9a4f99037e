"""What every `pmg` command shares: the consoles, settings loading, and failing with one clear line."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TextIO

import typer
from pydantic import ValidationError
from rich.console import Console
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bot import log_redaction
from bot.settings import Profile, Settings
from bot.user_files import private_folder

if TYPE_CHECKING:
    from pmg_engine.keywords import KeywordEngine
    from pmg_engine.mood import MoodModel
    from pmg_engine.stickers import StickerMaker

out = Console(soft_wrap=True)  # long paths and messages stay on one line, for logs and grep
err = Console(stderr=True, soft_wrap=True)
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_HANDLER = "pmg"  # the name of the one handler `configure_logging` owns on the root logger


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


class _CurrentStderr(logging.StreamHandler[TextIO]):
    """Writes to `sys.stderr` as it is when a record comes: a rich spinner swaps it to print log lines
    above itself (and tests swap it)."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> TextIO:  # type: ignore[override]
        return sys.stderr


def configure_logging(*, verbose: bool, log_file: Path | None = None) -> None:
    """Log to stderr, or to `log_file` (mode 0600 in a 0700 folder) when the terminal is a conversation;
    calling again moves the log there."""
    root = logging.getLogger()
    for previous in [h for h in root.handlers if h.get_name() == LOG_HANDLER]:
        root.removeHandler(previous)
        previous.close()
    if log_file is None:
        handler: logging.Handler = _CurrentStderr()
    else:
        private_folder(log_file.parent)
        log_file.touch(mode=0o600)
        log_file.chmod(0o600)  # a file made by an older version may be readable by others
        handler = logging.FileHandler(log_file, encoding="utf-8")
        logging.captureWarnings(True)  # a library's warning would otherwise be printed mid-conversation
    handler.set_name(LOG_HANDLER)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.getLogger("alembic").setLevel(logging.INFO if verbose else logging.WARNING)
    for name in ("httpx", "httpcore"):  # a line per HTTP request, even with --verbose: too many to read
        logging.getLogger(name).setLevel(logging.WARNING)


def load_settings(profile: Profile | None = None) -> Settings:
    """Settings from PMG_* and .env (`profile`: a command's --profile over PMG_PROFILE); a bad value is
    one clear line per variable, not a trace. From here on, the settings' secrets are redacted in logs."""
    try:
        settings = Settings()
    except ValidationError as error:
        lines = [
            f"PMG_{'_'.join(str(part) for part in issue['loc'][:1]).upper()}: {issue['msg']}"
            for issue in error.errors()
        ]
        fail("invalid settings:\n  " + "\n  ".join(lines), code=2)
    log_redaction.install(*_secrets(settings))
    return settings.model_copy(update={"profile": profile}) if profile else settings


def _secrets(settings: Settings) -> list[str | None]:
    """The tokens, the webhook secret and the database password: what no log line may show."""
    tokens = [settings.telegram_token, settings.discord_token, settings.telegram_webhook_secret]
    try:
        password = make_url(settings.database_url).password
    except (ArgumentError, ValueError):  # a URL that does not parse is reported when the store opens it
        password = None
    return [token.get_secret_value() for token in tokens if token is not None] + [password]


def load_keyword_engine(settings: Settings) -> KeywordEngine:
    """Stage 1 with the configured models; the first run converts the LLM (≈ 20 s)."""
    from pmg_engine.keywords import KeywordEngine
    from pmg_engine.model_sources import ModelUnavailableError

    with err.status("loading the LLM and the mood model (the first run converts the LLM, about 20 s)"):
        try:
            return KeywordEngine.load(
                llm_source=settings.llm_model,
                embedder_source=settings.text_embedder_model,
                cache_dir=settings.model_cache_dir,
                attributes=settings.preference_attributes,
                turns=settings.conversation_turns,
                llm_device=settings.llm_device,
            )
        except ModelUnavailableError as error:
            fail(str(error))


def load_mood_model(settings: Settings) -> MoodModel:
    """The mood model alone (no LLM): the shipped head, or one trained for another embedder."""
    from pmg_engine.model_sources import ModelUnavailableError
    from pmg_engine.mood import MoodModel, SentenceEmbedder

    with err.status("loading the mood model"):
        try:
            embedder = SentenceEmbedder(settings.text_embedder_model)
        except ModelUnavailableError as error:
            fail(str(error))
        return MoodModel.load(embedder, settings.model_cache_dir / "mood", turns=settings.conversation_turns)


def load_engines(settings: Settings) -> tuple[KeywordEngine, StickerMaker]:
    """Stage 1 and stage 2 for the configured profile; a missing model is one clear line."""
    from bot.composition import build_sticker_maker
    from pmg_engine.model_sources import ModelUnavailableError

    stage1 = load_keyword_engine(settings)
    with err.status(f"loading the {settings.profile} profile's generator, scorer and safety gate"):
        try:
            return stage1, build_sticker_maker(settings, embedder=stage1.embedder, llm=stage1.llm)
        except ModelUnavailableError as error:
            fail(str(error))


def load_stages(settings: Settings) -> tuple[KeywordEngine, StickerMaker] | None:
    """The engines this process runs: none with PMG_BACKEND=ray (the replicas of `pmg serve` hold them)."""
    if settings.backend == "local":
        return load_engines(settings)
    from importlib.util import find_spec

    from bot.ray_backend import INSTALL_HINT

    if find_spec("ray") is None:
        fail(INSTALL_HINT)
    return None
