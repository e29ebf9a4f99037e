"""What every `pmg` command shares: the consoles, settings loading, and failing with one clear line."""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console

from bot.settings import Profile, Settings

if TYPE_CHECKING:
    from pmg_engine.keywords import KeywordEngine
    from pmg_engine.stickers import StickerMaker

out = Console(soft_wrap=True)  # long paths and messages stay on one line, for logs and grep
err = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def load_settings(profile: Profile | None = None) -> Settings:
    """Settings from PMG_* and .env (`profile`: a command's --profile over PMG_PROFILE); a bad value is
    one clear line per variable, not a trace."""
    try:
        settings = Settings()
        return settings.model_copy(update={"profile": profile}) if profile else settings
    except ValidationError as error:
        lines = [
            f"PMG_{'_'.join(str(part) for part in issue['loc'][:1]).upper()}: {issue['msg']}"
            for issue in error.errors()
        ]
        fail("invalid settings:\n  " + "\n  ".join(lines), code=2)


def load_keyword_engine(settings: Settings) -> KeywordEngine:
    """Stage 1 with the configured models; the first run converts the LLM and trains the mood model (≈ 1 min)."""
    from pmg_engine.keywords import KeywordEngine
    from pmg_engine.model_sources import ModelUnavailableError

    with err.status(
        "loading the LLM and the mood model (the first run converts and trains them, about a minute)"
    ):
        try:
            return KeywordEngine.load(
                llm_source=settings.llm_model,
                embedder_source=settings.text_embedder_model,
                cache_dir=settings.model_cache_dir,
                attributes=settings.preference_attributes,
                turns=settings.conversation_turns,
            )
        except ModelUnavailableError as error:
            fail(str(error))


def load_engines(settings: Settings) -> tuple[KeywordEngine, StickerMaker]:
    """Stage 1 and stage 2 for the configured profile; a missing model is one clear line."""
    from bot.composition import build_sticker_maker
    from pmg_engine.model_sources import ModelUnavailableError

    stage1 = load_keyword_engine(settings)
    with err.status(f"loading the {settings.profile} profile's generator, scorer and safety gate"):
        try:
            return stage1, build_sticker_maker(
                settings, embedder=stage1.mood_model.features.embedder, llm=stage1.llm
            )
        except ModelUnavailableError as error:
            fail(str(error))
