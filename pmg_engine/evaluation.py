"""Quality bars: character and mood on labelled personas (stage 1 and the chosen sticker), mood on MELD."""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pmg_engine.behaviors import StickerSent, UserBehaviors
from pmg_engine.candidates import StickerRequest, normalise_weights
from pmg_engine.keyword_rules import key
from pmg_engine.keywords import KeywordEngine, Understanding
from pmg_engine.mood import MoodModel
from pmg_engine.stickers import ScoredCandidate

MELD_LABELS = ("anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise")
NADE_NEUTRAL_BELOW = 0.3  # gives nade its documented ≈ 0.45 weighted F1 on MELD test
TO_MELD = {"love": "joy", "tired": "sadness"}  # our nine moods on MELD's seven


@dataclass(frozen=True)
class Persona:
    id: str
    behaviors: UserBehaviors
    characters: list[str]
    mood: str


def load_personas(path: Path) -> list[Persona]:
    """Users in the JSON Lines format of shared/data/personas_dev.jsonl."""
    personas = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            behaviors = UserBehaviors(
                stickers=[StickerSent(**sticker) for sticker in row.get("stickers", [])],
                messages=list(row.get("messages", [])),
                conversation=list(row.get("conversation", [])),
            )
            personas.append(
                Persona(str(row["id"]), behaviors, row["expect"]["character"], row["expect"]["mood"])
            )
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"{path}:{number}: not a persona line ({error})") from error
    return personas


def character_matches(keyword: str, expected: list[str]) -> bool:
    """Case-insensitive, singular and plural alike."""
    return key(keyword.lower()) in {key(word.lower()) for word in expected}


def stage1_row(persona: Persona, understanding: Understanding, seconds: float) -> dict[str, Any]:
    """How stage 1 did on one labelled user."""
    keywords = understanding.preferences.keywords
    return {
        "id": persona.id,
        "character_hit": any(character_matches(k, persona.characters) for k in keywords),
        "character_top1": bool(keywords) and character_matches(keywords[0], persona.characters),
        "mood_correct": understanding.mood.mood == persona.mood,
        "expected_character": persona.characters,
        "expected_mood": persona.mood,
        "mood": understanding.mood.mood,
        "preference_keywords": keywords,
        "target_keywords": understanding.target_keywords,
        "fallback": understanding.preferences.fallback,
        "seconds": round(seconds, 3),
    }


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Rates over all users, and the rows themselves."""
    n = len(rows)
    return {
        "n": n,
        "character_hit_rate": _rate(rows, "character_hit"),
        "character_top1_rate": _rate(rows, "character_top1"),
        "mood_accuracy": _rate(rows, "mood_correct"),
        "seconds_per_user": round(sum(row["seconds"] for row in rows) / max(n, 1), 3),
        "users": rows,
    }


def evaluate_personas(
    engine: KeywordEngine, personas: list[Persona], progress: Callable[[int], None] = lambda done: None
) -> dict[str, Any]:
    """Each user cold (no cache), one at a time, as a first /sticker would be."""
    rows: list[dict[str, Any]] = []
    for done, persona in enumerate(personas, start=1):
        started = time.perf_counter()
        [understanding] = engine.understand([persona.behaviors])
        rows.append(stage1_row(persona, understanding, time.perf_counter() - started))
        progress(done)
    return summary(rows)


def _rate(rows: list[dict[str, Any]], name: str) -> float:
    return round(sum(bool(row[name]) for row in rows) / max(len(rows), 1), 4)


def load_meld(path: Path, limit: int | None = None) -> list[tuple[str, str]]:
    """(utterance, emotion) pairs of a MELD csv."""
    with path.open(encoding="utf-8", errors="replace", newline="") as handle:
        rows = [(row["Utterance"], row["Emotion"]) for row in csv.DictReader(handle)]
    return rows[:limit] if limit else rows


def weighted_f1(gold: list[str], predicted: list[str], labels: tuple[str, ...] = MELD_LABELS) -> float:
    total = 0.0
    for label in labels:
        tp = sum(g == label and p == label for g, p in zip(gold, predicted, strict=True))
        fp = sum(g != label and p == label for g, p in zip(gold, predicted, strict=True))
        fn = sum(g == label and p != label for g, p in zip(gold, predicted, strict=True))
        f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
        total += f1 * sum(g == label for g in gold)
    return total / max(len(gold), 1)


def mood_scores(gold: list[str], predicted: list[str]) -> dict[str, float]:
    accuracy = sum(g == p for g, p in zip(gold, predicted, strict=True)) / max(len(gold), 1)
    return {"accuracy": round(accuracy, 4), "weighted_f1": round(weighted_f1(gold, predicted), 4)}


def evaluate_meld(mood_model: MoodModel, rows: list[tuple[str, str]], batch: int = 64) -> dict[str, Any]:
    gold = [emotion for _, emotion in rows]
    predicted: list[str] = []
    started = time.perf_counter()
    for start in range(0, len(rows), batch):
        chunk = [[text] for text, _ in rows[start : start + batch]]
        predicted += [TO_MELD.get(p.mood, p.mood) for p in mood_model.predict(chunk)]
    seconds = time.perf_counter() - started
    return {
        "n": len(rows),
        **mood_scores(gold, predicted),
        "seconds_per_utterance": round(seconds / max(len(rows), 1), 4),
    }


def nade_baseline(
    rows: list[tuple[str, str]], neutral_below: float = NADE_NEUTRAL_BELOW
) -> dict[str, Any] | None:
    """The `nade` emotion model as a baseline, when installed: its strongest MELD emotion, or neutral
    when none reaches `neutral_below`. None when the package is absent."""
    try:
        from nade import Nade
    except ImportError:
        return None
    model = Nade()
    emotions = [label for label in MELD_LABELS if label != "neutral"]
    started = time.perf_counter()
    raw = model.predict([text for text, _ in rows])  # {emotion: arrow array, one score per text}
    scores = {emotion: raw[emotion].to_pylist() for emotion in emotions}
    predicted = []
    for index in range(len(rows)):
        best = max(emotions, key=lambda emotion: scores[emotion][index])
        predicted.append(best if scores[best][index] >= neutral_below else "neutral")
    seconds = time.perf_counter() - started
    gold = [emotion for _, emotion in rows]
    return {
        "n": len(rows),
        **mood_scores(gold, predicted),
        "seconds_per_utterance": round(seconds / max(len(rows), 1), 4),
    }


def _draws(emoji: str, characters: list[str]) -> bool:
    """Whether the offline art `emoji` is what an expected character name would be drawn with."""
    from pmg_engine.sticker_art.lookup import UnknownCharacterError, find_character_art

    for character in characters:
        try:
            if find_character_art(character).emoji == emoji:
                return True
        except UnknownCharacterError:
            continue
    return False


def sticker_shows(chosen: ScoredCandidate, request: StickerRequest, persona: Persona) -> tuple[bool, bool]:
    """(expected character shown, expected mood shown) by the chosen sticker, judged from what it was
    made of: a part with weight 0 is not in the picture; the offline composition names its character."""
    w_p, w_t = normalise_weights(*chosen.candidate.weights)
    details = chosen.candidate.details
    if "character" in details:  # offline: the composition says which art it drew
        drawn, name = details["character"], details.get("character_name") or ""
        character = drawn is not None and (
            character_matches(name, persona.characters) or _draws(drawn, persona.characters)
        )
    else:  # diffusion: the preference keywords it was conditioned on
        character = any(character_matches(k, persona.characters) for k in request.preference_keywords)
    return w_p > 0 and character, w_t > 0 and request.mood == persona.mood


def sticker_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Stage 1's summary plus how often the chosen sticker shows the expected character and mood."""
    return {
        **summary(rows),
        "sticker_character_rate": _rate(rows, "sticker_character"),
        "sticker_mood_rate": _rate(rows, "sticker_mood"),
    }
