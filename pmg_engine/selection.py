"""Balanced selection (paper §3.4): z = α·log d_p + (1−α)·log d_t, the highest z is the reply."""

from __future__ import annotations

import math
from collections.abc import Sequence

# Cosines can be ≤ 0 (an image unlike the keywords, or an orthogonal text embedding). They are clamped
# to this floor before the log: log(0.01) ≈ −4.6 is a heavy but finite penalty, so the other term still
# orders candidates that share it, and no log of a non-positive number is ever taken.
COSINE_FLOOR = 0.01


def check_alpha(alpha: float) -> float:
    """α must lie in [0, 1]: 1 = only the user's preference counts, 0 = only the mood."""
    if not 0.0 <= alpha <= 1.0 or math.isnan(alpha):
        raise ValueError(f"alpha must be between 0 and 1 (preference vs mood), got {alpha}")
    return alpha


def z_score(d_p: float, d_t: float, alpha: float) -> float:
    """z for one candidate from its cosines with the preference (d_p) and target (d_t) keywords."""
    check_alpha(alpha)
    return alpha * math.log(max(d_p, COSINE_FLOOR)) + (1 - alpha) * math.log(max(d_t, COSINE_FLOOR))


def best_index(z: Sequence[float], allowed: Sequence[bool]) -> int | None:
    """The highest z among allowed candidates (first wins a tie), None when none is allowed."""
    ranked = [i for i in range(len(z)) if allowed[i]]
    return max(ranked, key=lambda i: (z[i], -i)) if ranked else None
