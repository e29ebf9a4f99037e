"""Scores of predicted moods against gold ones: accuracy, macro and weighted F1, confusion."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from pmg_engine.mood_data import MOODS


def labels_in(gold: Sequence[str]) -> list[str]:
    """The moods that occur in `gold`, in MOODS' order: a mood with no gold rows would only add a zero F1."""
    present = set(gold)
    return [mood for mood in MOODS if mood in present]


def f1(gold: Sequence[str], predicted: Sequence[str], label: str) -> float:
    pairs = list(zip(gold, predicted, strict=True))
    tp = sum(g == label and p == label for g, p in pairs)
    fp = sum(g != label and p == label for g, p in pairs)
    fn = sum(g == label and p != label for g, p in pairs)
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def macro_f1(gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> float:
    return sum(f1(gold, predicted, label) for label in labels) / max(len(labels), 1)


def weighted_f1(gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> float:
    counts = Counter(gold)
    return sum(f1(gold, predicted, label) * counts[label] for label in labels) / max(len(gold), 1)


def accuracy(gold: Sequence[str], predicted: Sequence[str]) -> float:
    return sum(g == p for g, p in zip(gold, predicted, strict=True)) / max(len(gold), 1)


def confusion(gold: Sequence[str], predicted: Sequence[str]) -> dict[str, dict[str, int]]:
    """gold mood -> {predicted mood: count}, only the pairs that occur."""
    table: dict[str, dict[str, int]] = {}
    for (g, p), count in sorted(Counter(zip(gold, predicted, strict=True)).items()):
        table.setdefault(g, {})[p] = count
    return table


def mood_scores(gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> dict[str, object]:
    """Everything `pmg eval` prints for one model on one data set."""
    return {
        "n": len(gold),
        "accuracy": round(accuracy(gold, predicted), 4),
        "macro_f1": round(macro_f1(gold, predicted, labels), 4),
        "weighted_f1": round(weighted_f1(gold, predicted, labels), 4),
        "per_mood_f1": {label: round(f1(gold, predicted, label), 4) for label in labels},
        "confusion": confusion(gold, predicted),
    }
