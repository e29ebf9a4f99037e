"""Who a user or chat is: a platform plus that platform's own id, never a bare number."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

MAX_ID_CHARS = 64  # what the store keeps of a platform id: a longer one is refused, never cut


class UnknownPlatformError(ValueError):
    """A platform name this bot has no adapter for."""


class Platform(StrEnum):
    TELEGRAM = "telegram"
    DISCORD = "discord"
    CONSOLE = "console"

    @classmethod
    def parse(cls, name: str | Platform) -> Platform:
        try:
            return cls(str(name).strip().lower())
        except ValueError:
            known = ", ".join(p.value for p in cls)
            raise UnknownPlatformError(f"unknown platform {name!r}; known platforms: {known}") from None


@dataclass(frozen=True)
class UserKey:
    """A user as the platform names them (ids are strings: Discord snowflakes overflow int64 JSON)."""

    platform: Platform
    external_id: str

    def __post_init__(self) -> None:
        # Checked here, where every key is made: a key the store would cut could never be found again.
        if not self.external_id:
            raise ValueError("a user needs a non-empty platform id")
        if len(self.external_id) > MAX_ID_CHARS:
            raise ValueError(
                f"a user id is at most {MAX_ID_CHARS} characters ({len(self.external_id)} given)"
            )

    @classmethod
    def of(cls, platform: str | Platform, external_id: str | int) -> UserKey:
        return cls(Platform.parse(platform), str(external_id).strip())

    def __str__(self) -> str:
        return f"{self.platform.value}:{self.external_id}"


def file_stem(name: str, limit: int = 40) -> str:
    """A user-given name made safe as part of a file name ("zoë/../x" -> "zoë____x")."""
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)[:limit]
