"""What stage 1 makes of a request. Plain data without model code: replies from sticker workers in another
process carry it, and the front end that unpickles them must not load torch for it."""

from __future__ import annotations

from dataclasses import dataclass, field

from pmg_engine.mood_data import MoodPrediction
from pmg_engine.preferences import Preferences


@dataclass(frozen=True)
class Understanding:
    """What stage 1 makes of one request: k^p, the mood, k^t, and seconds per step."""

    preferences: Preferences
    mood: MoodPrediction
    target_keywords: list[str]
    timings: dict[str, float] = field(default_factory=dict)
