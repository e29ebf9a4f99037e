"""Per-user α: which candidates a user picks tells whether they lean to their character or to the mood.

z = α·log d_p + (1−α)·log d_t favours the candidate drawn with a preference share w_p/(w_p+w_t) near α,
so the shares of the candidates a user chose (🎨 Choose, ➕ added to a pack) estimate their own α. The
estimate starts at the global α (PMG_ALPHA) as if it were PRIOR_CHOICES choices, moves only once the
user made MIN_CHOICES of their own, and stays within BOUNDS so one side never silences the other."""

from __future__ import annotations

from collections.abc import Sequence

MIN_CHOICES = 3
PRIOR_CHOICES = 4
BOUNDS = (0.2, 0.8)


def preference_share(weights: Sequence[float]) -> float:
    """w_p / (w_p + w_t) of a weight set: 0 is the mood alone, 1 the user's preference alone."""
    w_p, w_t = weights
    return w_p / (w_p + w_t)


def personal_alpha(chosen: Sequence[Sequence[float]], default: float) -> float:
    """The user's α from the weight sets of the candidates they chose, smoothed toward `default`."""
    if len(chosen) < MIN_CHOICES:
        return default
    shares = sum(preference_share(weights) for weights in chosen)
    estimate = (PRIOR_CHOICES * default + shares) / (PRIOR_CHOICES + len(chosen))
    low, high = BOUNDS
    return round(min(high, max(low, estimate)), 3)


def alpha_line(alpha: float, default: float, choices: int) -> str | None:
    """How /about explains a personal α; None while it is the default."""
    if choices < MIN_CHOICES or abs(alpha - default) < 0.005:
        return None
    side = "your favourite characters" if alpha > default else "the mood of the conversation"
    return (
        f"Your stickers lean to {side}: α = {alpha:.2f} (default {default:.2f}), "
        f"learned from the {choices} stickers you chose."
    )
