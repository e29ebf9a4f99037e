"""Stage 1 of PMG: a user's behaviors to preference keywords, the conversation's mood and target keywords."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

from pmg_engine.behaviors import UserBehaviors
from pmg_engine.llm import ChatLLM
from pmg_engine.mood import MoodModel, SentenceEmbedder
from pmg_engine.preferences import PreferenceExtractor, Preferences, keyword_model_name, safe_behaviors
from pmg_engine.prompts import ATTRIBUTES, target_prompt
from pmg_engine.target import target_keywords
from pmg_engine.understanding import Understanding

log = logging.getLogger(__name__)

ANSWER_TOKENS = 12  # a few keywords; every token more costs each batched request ≈ 0.1 s on 2 cores


class KeywordEngine:
    """Runs stage 1 for several requests at once: one mood pass, then one batched generate call holding
    every preference question (users without cached keywords only) and every target question."""

    def __init__(
        self,
        llm: ChatLLM,
        mood_model: MoodModel,
        extractor: PreferenceExtractor,
        *,
        turns: int = 3,
        embedder: SentenceEmbedder | None = None,
    ) -> None:
        self.llm = llm
        self.embedder = embedder  # the untuned embedder, for the sticker scorer to share
        self.mood_model = mood_model
        self.extractor = extractor
        self.turns = turns

    @classmethod
    def load(
        cls,
        *,
        llm_source: str,
        embedder_source: str,
        cache_dir: Path,
        attributes: Sequence[str] = tuple(ATTRIBUTES),
        turns: int = 3,
        llm_device: str = "cpu",
    ) -> KeywordEngine:
        llm = ChatLLM.load(llm_source, cache_dir / "llm", device=llm_device)
        embedder = SentenceEmbedder(embedder_source)
        mood_model = MoodModel.load(embedder, cache_dir / "mood", turns=turns)
        log.info("stage 1 ready: LLM %s (%.1f s), embedder %s", llm_source, llm.load_seconds, embedder_source)
        return cls(llm, mood_model, PreferenceExtractor(llm, attributes), turns=turns, embedder=embedder)

    @property
    def model_name(self) -> str:
        return keyword_model_name(self.llm.name, [a.name for a in self.extractor.attributes])

    def understand(
        self, users: list[UserBehaviors], cached: Sequence[Preferences | None] | None = None
    ) -> list[Understanding]:
        """Stage 1 for each user; `cached[i]` (keywords still valid for user i) skips their preference questions."""
        cached = list(cached) if cached is not None else [None] * len(users)
        started = time.perf_counter()
        users = [safe_behaviors(user) for user in users]
        moods = self.mood_model.predict([user.conversation for user in users])
        mood_seconds = time.perf_counter() - started

        asking = [i for i, hit in enumerate(cached) if hit is None]
        questions = [q for i in asking for q in self.extractor.prompts(users[i])]
        questions += [
            target_prompt(user, mood.mood, turns=self.turns) for user, mood in zip(users, moods, strict=True)
        ]
        answers = self.llm.generate(questions, max_new_tokens=ANSWER_TOKENS)
        generate_seconds = time.perf_counter() - started - mood_seconds

        per_user = len(self.extractor.attributes)
        preference_answers = {i: answers[n * per_user : (n + 1) * per_user] for n, i in enumerate(asking)}
        target_answers = answers[len(asking) * per_user :]
        results = []
        for i, (user, mood, target_answer) in enumerate(zip(users, moods, target_answers, strict=True)):
            hit = cached[i]
            preferences = hit or self.extractor.merge(
                user, preference_answers[i], self.extractor.rank_characters(user)
            )
            results.append(
                Understanding(
                    preferences,
                    mood,
                    target_keywords(mood.mood, target_answer),
                    {
                        "mood": mood_seconds,
                        "generate": generate_seconds,
                        "total": time.perf_counter() - started,
                    },
                )
            )
        return results
