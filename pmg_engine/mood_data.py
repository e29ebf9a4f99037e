"""Labelled mood text: the project's own sentences and chat lines, and GoEmotions mapped onto our nine moods."""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

MOODS = ("joy", "sadness", "anger", "fear", "surprise", "disgust", "love", "tired", "neutral")
# One emoji per mood: what a sticker is filed under in a pack, and what inline mode matches.
MOOD_EMOJI = {
    "joy": "😄",
    "sadness": "😢",
    "anger": "😠",
    "fear": "😨",
    "surprise": "😮",
    "disgust": "🤢",
    "love": "🥰",
    "tired": "😴",
    "neutral": "🙂",
}

# GoEmotions' 27 emotions + neutral on our nine moods: the Ekman grouping of the GoEmotions paper
# (Demszky et al. 2020, Table 2), with love and caring kept apart as `love`, which we have and Ekman
# has not. None drops the label: approval, disapproval, realization, desire and curiosity say
# "I agree", "you're wrong", "oh I see", "I want" or ask a question; none has a face a sticker could
# show, and reading them as joy, anger or surprise taught the head to see moods in plain talk.
GOEMOTIONS_TO_MOOD: dict[str, str | None] = {
    "admiration": "joy",
    "amusement": "joy",
    "excitement": "joy",
    "gratitude": "joy",
    "joy": "joy",
    "optimism": "joy",
    "pride": "joy",
    "relief": "joy",
    "love": "love",
    "caring": "love",
    "desire": None,
    "sadness": "sadness",
    "grief": "sadness",
    "disappointment": "sadness",
    "remorse": "sadness",
    "embarrassment": "sadness",
    "anger": "anger",
    "annoyance": "anger",
    "disapproval": None,
    "fear": "fear",
    "nervousness": "fear",
    "surprise": "surprise",
    "confusion": "surprise",
    "realization": None,
    "curiosity": None,
    "approval": None,
    "disgust": "disgust",
    "neutral": "neutral",
}


@dataclass(frozen=True)
class MoodPrediction:
    """A conversation's mood with every mood's probability. Kept here, away from torch, because results
    that cross a process boundary hold it (a front end unpickling them loads no model code)."""

    mood: str
    probabilities: dict[str, float]


@dataclass(frozen=True)
class LabelledText:
    mood: str
    text: str


def goemotions_mood(labels: list[str]) -> str | None:
    """One mood for a comment's labels, or None to leave the comment out: every label that maps must map
    to the same mood, and a comment whose labels all drop is left out too (it is not neutral, only
    unmapped). Mixed rows ("sad but grateful") would teach the head that one comment is two moods."""
    moods = {GOEMOTIONS_TO_MOOD[label] for label in labels}
    if len(moods) != 1 or None in moods:
        return None
    return moods.pop()


def load_goemotions(path: Path) -> list[LabelledText]:
    """The comments of one GoEmotions split (text, emotion ids, comment id; no header) that map to one mood.
    The split's folder holds `emotions.txt`, the names the ids index."""
    names = (path.parent / "emotions.txt").read_text(encoding="utf-8").split()
    if sorted(names) != sorted(GOEMOTIONS_TO_MOOD):
        raise ValueError(f"{path.parent / 'emotions.txt'}: not GoEmotions' 28 labels")
    rows = []
    with path.open(encoding="utf-8", newline="") as handle:
        for number, row in enumerate(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE), start=1):
            if len(row) != 3:
                raise ValueError(f"{path}:{number}: expected text, emotion ids, comment id")
            mood = goemotions_mood([names[int(i)] for i in row[1].split(",")])
            if mood is not None:
                rows.append(LabelledText(mood, row[0]))
    return rows


def packaged(name: str) -> Path:
    return Path(str(resources.files("pmg_engine") / "data" / name))


def load_tsv(path: Path) -> list[LabelledText]:
    """A `mood<TAB>text` file with that header, as the project's own sets are kept."""
    with path.open(encoding="utf-8", newline="") as handle:
        rows = [
            LabelledText(row["mood"], row["text"])
            for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        ]
    unknown = {row.mood for row in rows} - set(MOODS)
    if unknown:
        raise ValueError(f"{path}: unknown moods {sorted(unknown)}")
    return rows


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
