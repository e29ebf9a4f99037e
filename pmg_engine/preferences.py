"""Preference keywords k^p (paper §3.2.2): per-attribute LLM answers, validated and ranked by evidence."""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pmg_engine.behaviors import UserBehaviors, emoji_name, sticker_line
from pmg_engine.characters import ELEMENT_HEADS, CharacterEvidence, canonical, character_evidence
from pmg_engine.keyword_rules import (
    dedupe,
    key,
    looks_like_instruction,
    normalise,
    singular,
    split_keywords,
    valid_keyword,
)
from pmg_engine.prompts import ATTRIBUTES, Conversation, attribute_prompt

if TYPE_CHECKING:
    from pmg_engine.llm import ChatLLM

log = logging.getLogger(__name__)

TOP_K = 10
# The LLM breaks ties between characters; it must not outvote the stickers (it favours common animals).
LLM_WEIGHT = 0.1
PER_ATTRIBUTE = {"character": 2, "style": 2, "colour": 2, "elements": 3}
STYLE_WORDS = frozenset(
    """cartoon cute kawaii chibi pixel anime manga 3d hand-drawn doodle sketch watercolor watercolour
    minimalist flat comic retro vintage realistic meme chunky round pastel neon glossy cel-shaded line
    art outline bold simple fluffy soft funny silly classic""".split()
)
COLOUR_WORDS = frozenset(
    """red orange yellow green blue purple violet pink brown black white grey gray gold golden silver
    pastel rainbow neon teal turquoise beige cream light dark bright soft warm cool colorful colourful""".split()
)
FACE_WORDS = frozenset({"face", "head", "eye", "eyes", "mouth", "nose", "ear", "ears", "smile", "tears"})
DECORATION_WORDS = frozenset(
    """heart star sparkle flower petal blossom cloud rainbow bubble confetti balloon crown bow ribbon hat
    glasses moon sun snowflake leaf music note speech tear sweat drop fire flame lightning ghost candy
    cake coffee tea""".split()
)


def keyword_model_name(llm_source: str, attributes: Sequence[str]) -> str:
    """What preference keywords depend on (the LLM and the questions asked): cached ones made otherwise are stale."""
    return f"{llm_source}|{','.join(attributes)}"


@dataclass(frozen=True)
class Preferences:
    """The user's preference keywords, character first, and where they came from."""

    keywords: list[str]
    character: str | None
    answers: dict[str, list[str]] = field(default_factory=dict)  # validated LLM keywords per attribute
    fallback: bool = False  # no LLM answer was usable: evidence alone

    @classmethod
    def from_cache(cls, keywords: list[str]) -> Preferences:
        """Cached keywords; the character is ranked first when they are made."""
        return cls(list(keywords), keywords[0] if keywords else None)


def safe_behaviors(behaviors: UserBehaviors) -> UserBehaviors:
    """User lines that read as instructions to the model are dropped before any prompt sees them."""

    def kept(lines: list[str]) -> list[str]:
        return [line for line in lines if not looks_like_instruction(line)]

    safe = UserBehaviors(behaviors.stickers, kept(behaviors.messages), kept(behaviors.conversation))
    dropped = (
        len(behaviors.messages) + len(behaviors.conversation) - len(safe.messages) - len(safe.conversation)
    )
    if dropped:
        log.info("dropped %d instruction-like line(s) of user text from the prompts", dropped)
    return safe


def evidence_counts(behaviors: UserBehaviors) -> Counter[str]:
    """How many sticker lines mention each word or word pair (appendix C's frequency evidence)."""
    counts: Counter[str] = Counter()
    for sticker in behaviors.stickers:
        words = normalise(f"{sticker_line(sticker)} {emoji_name(sticker.emoji) or ''}").split()
        phrases = {key(" ".join(words[i : i + n])) for n in (1, 2) for i in range(len(words) - n + 1)}
        counts.update(phrases)
    return counts


def evidence_keywords(behaviors: UserBehaviors) -> list[str]:
    """Decorations seen on the stickers (hearts, sparkles, ...), most frequent first: the fallback's extras."""
    counts: Counter[str] = Counter()
    for sticker in behaviors.stickers:
        name = normalise(emoji_name(sticker.emoji) or sticker.name or "")
        if name and name.split()[-1] in ELEMENT_HEADS:
            counts[name] += 1
    return [word for word, _ in counts.most_common()]


class PreferenceExtractor:
    """One LLM question per attribute, answers validated, merged with the character ranking by evidence."""

    def __init__(
        self, llm: ChatLLM, attributes: Sequence[str] = tuple(ATTRIBUTES), top_k: int = TOP_K
    ) -> None:
        unknown = set(attributes) - set(ATTRIBUTES)
        if unknown:
            raise ValueError(f"unknown preference attributes {sorted(unknown)}; known: {sorted(ATTRIBUTES)}")
        self.llm = llm
        self.attributes = [ATTRIBUTES[name] for name in attributes]
        self.top_k = top_k

    def prompts(self, behaviors: UserBehaviors) -> list[Conversation]:
        """One question per attribute; the caller batches them with other users' into one generate call."""
        return [attribute_prompt(attribute, behaviors) for attribute in self.attributes]

    def rank_characters(self, behaviors: UserBehaviors) -> list[tuple[str, float]]:
        """Candidates by log-frequency evidence plus the LLM's likelihood of naming each."""
        evidence = character_evidence(behaviors.stickers)
        if len(evidence) <= 1:
            return [(e.character, math.log1p(e.count)) for e in evidence]
        names = [e.character for e in evidence]
        question = attribute_prompt(ATTRIBUTES["character"], behaviors)
        per_token = self.llm.option_token_counts(names)  # (K,)
        likelihood = self.llm.score_options([question], names)[0] / per_token  # (K,) mean log-prob
        spread = likelihood.std().clamp_min(1e-6)
        llm_z = (likelihood - likelihood.mean()) / spread
        ranked = [
            (e.character, math.log1p(e.count) + LLM_WEIGHT * float(z))
            for e, z in zip(evidence, llm_z, strict=True)
        ]
        return sorted(ranked, key=lambda item: -item[1])

    def merge(
        self, behaviors: UserBehaviors, outputs: list[str], characters: list[tuple[str, float]]
    ) -> Preferences:
        """Character first (with the names it goes by), then each attribute's accepted keywords by evidence."""
        evidence = evidence_counts(behaviors)
        by_character = {e.character: e for e in character_evidence(behaviors.stickers)}
        answers: dict[str, list[str]] = {}
        for attribute, output in zip(self.attributes, outputs, strict=True):
            keywords = [k for k in map(valid_keyword, split_keywords(output)) if k]
            accepted = [k for k in keywords if accepts(attribute.name, k, evidence, set(by_character))]
            if not accepted:
                # The answer often echoes the user's words: only with --verbose.
                log.debug("no usable %s keyword in the LLM's answer %r", attribute.name, output[:80])
            accepted.sort(key=lambda k: -evidence[key(k)])  # stable: the LLM's order breaks ties
            if attribute.name == "colour":  # it lists colours at random: keep the ones the stickers show
                accepted = [k for k in accepted if evidence[key(k)]] or accepted[:1]
            answers[attribute.name] = accepted[: PER_ATTRIBUTE.get(attribute.name, 2)]
        top = characters[0][0] if characters else None
        ranked = _ranked_characters(characters, by_character)
        ranked += [k for name, keywords in answers.items() if name != "character" for k in keywords]
        fallback = not any(answers.values())
        if fallback:
            log.warning("no usable LLM preference answer; using evidence-only keywords")
        return Preferences(
            _keywords(ranked + evidence_keywords(behaviors), self.top_k), top, answers, fallback
        )


def evidence_only_keywords(behaviors: UserBehaviors, top_k: int = TOP_K) -> list[str]:
    """k^p from the stickers' own evidence, no LLM: what `merge` gives when no answer is usable."""
    evidence = character_evidence(behaviors.stickers)
    characters = [(e.character, math.log1p(e.count)) for e in evidence]
    ranked = _ranked_characters(characters, {e.character: e for e in evidence})
    return _keywords(ranked + evidence_keywords(behaviors), top_k)


def _ranked_characters(
    characters: list[tuple[str, float]], by_character: dict[str, CharacterEvidence]
) -> list[str]:
    """The top character with the names it goes by, then other characters seen at least twice."""
    top = characters[0][0] if characters else None
    ranked = [top, *_aliases(by_character[top])] if top else []
    return ranked + [c for c, _ in characters[1:] if by_character[c].count >= 2]


def _keywords(words: list[str], top_k: int) -> list[str]:
    return dedupe([k for k in (valid_keyword(word) for word in words) if k])[:top_k]


def accepts(attribute: str, keyword: str, evidence: Counter[str], characters: set[str]) -> bool:
    """Whether an LLM keyword answers its attribute: the small LLM echoes names and lists every colour,
    so each attribute takes only what fits it (a vocabulary) or what the stickers themselves show."""
    words = keyword.split()
    if attribute == "character":  # only characters the stickers show: no "cat" for a pizza fan
        return canonical(keyword) in characters
    if attribute == "style":
        return any(word in STYLE_WORDS for word in words)
    if attribute == "colour":
        return all(word in COLOUR_WORDS for word in words)
    if any(canonical(word) in characters or word in FACE_WORDS for word in words):
        return False  # the character itself, or its face, is no decoration
    return all(singular(word) in DECORATION_WORDS for word in words) or evidence[key(keyword)] > 0


def _aliases(evidence: CharacterEvidence, limit: int = 2) -> list[str]:
    """Specific one-word names the character went by ("corgi" for dog)."""
    return sorted(alias for alias in evidence.aliases if " " not in alias)[:limit]
