"""Target keywords k^t: the mood, then the expression and posture the sticker should show (5 in all)."""

from __future__ import annotations

from pmg_engine.keyword_rules import dedupe, split_keywords, valid_keyword

TARGET_COUNT = 5

# Per mood: the emotion word, then a face and a body that read as that mood at sticker size.
# The LLM's own keywords come first after the emotion word; these fill what it leaves out.
MOOD_LOOKS: dict[str, list[str]] = {
    "joy": ["joyful", "big smile", "sparkling eyes", "arms raised", "jumping"],
    "sadness": ["sad", "teary eyes", "frown", "drooping shoulders", "hugging knees"],
    "anger": ["angry", "furrowed brows", "gritted teeth", "clenched fists", "stomping"],
    "fear": ["scared", "wide eyes", "trembling", "hands on cheeks", "hiding"],
    "surprise": ["surprised", "open mouth", "raised eyebrows", "hands up", "jumping back"],
    "disgust": ["disgusted", "wrinkled nose", "tongue out", "turning away", "pushing away"],
    "love": ["loving", "heart eyes", "blushing", "hugging", "blowing a kiss"],
    "tired": ["tired", "sleepy eyes", "yawning", "slumped", "lying down"],
    "neutral": ["calm", "small smile", "relaxed face", "standing", "waving"],
}


# Echoes of the prompt ("mood fear") and chat talk ("i'm sorry") describe no look.
NOT_A_LOOK = frozenset(
    {
        "mood",
        "feeling",
        "feel",
        "by",
        "i",
        "i'm",
        "im",
        "you",
        "me",
        "my",
        "sorry",
        "please",
        "lol",
        "haha",
        "omg",
        *MOOD_LOOKS,
    }
)


# Words that give a face away. The LLM is asked for the mood's look, but a small one often answers with
# the look of the topic ("smiling" for a cancelled trip); a keyword with a cue of a clashing kind would
# draw the wrong face, so it gives way to the mood's own looks.
CUES: dict[str, frozenset[str]] = {
    "bright": frozenset(
        "smile smiles smiling grin grinning laugh laughing happy cheerful joyful beaming excited "
        "celebrating dancing giggling".split()
    ),
    "dark": frozenset(
        "cry crying tears teary tearful sob sobbing frown frowning scowl scowling angry furious mad rage "
        "scared afraid terrified trembling shaking disgusted gagging grimace grimacing sad upset pout "
        "pouting".split()
    ),
    "sleepy": frozenset("sleepy sleeping asleep yawn yawning tired exhausted drowsy snoring".split()),
}
CLASHING: dict[str, frozenset[str]] = {
    "joy": frozenset({"dark", "sleepy"}),
    "love": frozenset({"dark", "sleepy"}),
    "sadness": frozenset({"bright"}),
    "anger": frozenset({"bright", "sleepy"}),
    "fear": frozenset({"bright", "sleepy"}),
    "disgust": frozenset({"bright", "sleepy"}),
    "surprise": frozenset({"sleepy"}),
    "tired": frozenset({"bright"}),
    "neutral": frozenset({"dark", "sleepy"}),
}


def fits_mood(keyword: str, mood: str) -> bool:
    """False when the keyword holds a cue of a kind that clashes with the mood ("big smile" for sadness)."""
    words = set(keyword.lower().split())
    return not any(words & CUES[kind] for kind in CLASHING[mood])


def target_keywords(mood: str, llm_answer: str | None) -> list[str]:
    """The mood's emotion word, the LLM's expression/posture keywords that fit the mood, then the mood's
    defaults."""
    looks = MOOD_LOOKS[mood]
    candidates = [k for k in map(valid_keyword, split_keywords(llm_answer or "")) if k]
    from_llm = [k for k in candidates if not NOT_A_LOOK.intersection(k.split()) and fits_mood(k, mood)]
    return dedupe([looks[0], *from_llm, *looks[1:]])[:TARGET_COUNT]
