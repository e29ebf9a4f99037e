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


def target_keywords(mood: str, llm_answer: str | None) -> list[str]:
    """The mood's emotion word, the LLM's valid expression/posture keywords, then the mood's defaults."""
    looks = MOOD_LOOKS[mood]
    candidates = [k for k in map(valid_keyword, split_keywords(llm_answer or "")) if k]
    from_llm = [k for k in candidates if not NOT_A_LOOK.intersection(k.split())]
    return dedupe([looks[0], *from_llm, *looks[1:]])[:TARGET_COUNT]
