"""`pmg eval feedback`: what users do with their stickers, as a maintainer watches it — choices per weight
set, how often z's own pick was the one chosen, the users' α, the reroll rate."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from bot.behavior import FeedbackEvent
from bot.personal_alpha import MIN_CHOICES, personal_alpha

CHOICE_KINDS = ("chosen", "pack")


def weight_label(weights: Sequence[float]) -> str:
    return f"{weights[0]:g}:{weights[1]:g}"


def feedback_report(events: Sequence[FeedbackEvent], default_alpha: float) -> dict[str, Any]:
    """Counts and rates over every user's feedback (no user is named)."""
    kinds = Counter(event.kind for event in events)
    choices = [e for e in events if e.kind in CHOICE_KINDS and e.weights is not None]
    picked = [e for e in events if e.kind == "chosen" and e.candidate_index is not None]
    by_user: defaultdict[int, list[tuple[float, float]]] = defaultdict(list)
    for event in choices:
        assert event.weights is not None
        by_user[event.user].append(event.weights)
    alphas = [personal_alpha(weights, default_alpha) for weights in by_user.values()]
    personal = [a for a, weights in zip(alphas, by_user.values(), strict=True) if len(weights) >= MIN_CHOICES]
    sent = kinds["sent"]
    return {
        "events": len(events),
        "users": len({e.user for e in events}),
        "counts": {kind: kinds[kind] for kind in ("sent", "another", "chosen", "pack", "inline")},
        "choices_per_weight_set": dict(sorted(Counter(weight_label(e.weights) for e in choices).items())),  # type: ignore[arg-type]
        "z_pick_chosen_rate": _rate(sum(e.candidate_index == e.z_pick for e in picked), len(picked)),
        "reroll_rate": _rate(kinds["another"], sent),
        "alpha": {
            "default": default_alpha,
            "users_with_personal_alpha": len(personal),
            "min": min(personal, default=None),
            "median": statistics.median(personal) if personal else None,
            "max": max(personal, default=None),
        },
    }


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def report_lines(report: dict[str, Any]) -> list[str]:
    counts, alpha = report["counts"], report["alpha"]
    per_set = ", ".join(f"{label} ×{n}" for label, n in report["choices_per_weight_set"].items()) or "none"
    lines = [
        f"{report['events']} feedback events from {report['users']} users: "
        + ", ".join(f"{kind} {n}" for kind, n in counts.items()),
        f"choices per weight set (w_p:w_t): {per_set}",
        f"z's own pick chosen: {_percent(report['z_pick_chosen_rate'])} of choices; "
        f"rerolls (🔄) per sticker sent: {_percent(report['reroll_rate'])}",
    ]
    if alpha["users_with_personal_alpha"]:
        lines.append(
            f"personal α ({alpha['users_with_personal_alpha']} users with ≥ {MIN_CHOICES} choices): "
            f"min {alpha['min']:.2f}, median {alpha['median']:.2f}, max {alpha['max']:.2f} "
            f"(default {alpha['default']:.2f})"
        )
    else:
        lines.append(
            f"personal α: no user has {MIN_CHOICES} choices yet (everyone uses {alpha['default']:.2f})"
        )
    return lines


def _percent(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:.0%}"
