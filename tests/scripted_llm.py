"""A stand-in for ChatLLM with fixed answers: the real SmolLM2 runs in test_llm.py and test_stage1_real.py;
here the answers must be known to test parsing, validation, batching and caching."""

from __future__ import annotations

from collections.abc import Callable

import torch

from pmg_engine.mood import MOODS, MoodPrediction
from pmg_engine.prompts import Conversation

Answer = Callable[[Conversation], str]


class ScriptedLLM:
    name = "scripted-llm"

    def __init__(self, answer: Answer, preferred: dict[str, float] | None = None) -> None:
        self.answer = answer
        self.preferred = preferred or {}  # option -> per-token log-probability; others score -5
        self.generate_calls: list[list[Conversation]] = []

    def generate(self, conversations: list[Conversation], *, max_new_tokens: int = 24) -> list[str]:
        self.generate_calls.append(conversations)
        return [self.answer(conversation) for conversation in conversations]

    def score_options(self, conversations: list[Conversation], options: list[str]) -> torch.Tensor:
        row = torch.tensor([self.preferred.get(option, -5.0) for option in options])
        return row.repeat(len(conversations), 1)

    def option_token_counts(self, options: list[str]) -> torch.Tensor:
        return torch.ones(len(options))


class FixedMood:
    """A mood model that always answers one mood (the real one is tested in test_mood.py)."""

    def __init__(self, mood: str = "joy") -> None:
        self.mood = mood
        self.seen: list[list[str]] = []

    def predict(self, conversations: list[list[str]]) -> list[MoodPrediction]:
        self.seen += conversations
        return [MoodPrediction(self.mood, {m: float(m == self.mood) for m in MOODS}) for _ in conversations]


def by_question(answers: dict[str, str], default: str = "") -> Answer:
    """Answer by the first word of a key found in the conversation's last message."""

    def answer(conversation: Conversation) -> str:
        last = conversation[-1]["content"]
        return next((text for cue, text in answers.items() if cue in last), default)

    return answer
