"""What every `pmg` command shares: the consoles, settings loading, and failing with one clear line."""

from __future__ import annotations

from typing import NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console

from bot.settings import Settings

out = Console()
err = Console(stderr=True)


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def load_settings() -> Settings:
    """Settings from PMG_* and .env; a bad value is one clear line per variable, not a trace."""
    try:
        return Settings()
    except ValidationError as error:
        lines = [
            f"PMG_{'_'.join(str(part) for part in issue['loc'][:1]).upper()}: {issue['msg']}"
            for issue in error.errors()
        ]
        fail("invalid settings:\n  " + "\n  ".join(lines), code=2)
