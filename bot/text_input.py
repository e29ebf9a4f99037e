"""Make user text safe to store: valid UTF-8, no NULs, bounded length (flagged when cut)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CleanText:
    text: str
    truncated: bool
    original_length: int


def clean_text(raw: str | bytes, max_chars: int) -> CleanText:
    """Decode bytes leniently, replace lone surrogates with U+FFFD, drop NULs, cut to `max_chars`."""
    if isinstance(raw, bytes):
        text = raw.decode("utf-8", errors="replace")
    else:
        # A valid surrogate pair becomes its character; a lone surrogate (cannot be UTF-8) becomes U+FFFD.
        text = raw.encode("utf-16", errors="surrogatepass").decode("utf-16", errors="replace")
    text = text.replace("\x00", "")
    if len(text) <= max_chars:
        return CleanText(text, truncated=False, original_length=len(text))
    return CleanText(text[:max_chars], truncated=True, original_length=len(text))
