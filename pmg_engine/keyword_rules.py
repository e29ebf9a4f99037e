"""Keyword hygiene: what a keyword may look like, how two keywords are the same, how LLM output splits."""

from __future__ import annotations

import re

MAX_WORDS = 3
MAX_CHARS = 28

STOP_WORDS = frozenset(
    """a an the and or but of to in on at for with from by as is are was were be been it its this that
    these those i me my you your he she they them their we our us his her not no yes none null n/a na
    some any very much many more most so too also just like likes liked user users sticker stickers
    emoji emojis set sets character characters style styles colour colours color colors element elements
    keyword keywords thing things stuff one ones other others etc something nothing everything""".split()
)

# Words of an instruction to the model: a keyword containing one came from a user's injection or an echo.
INSTRUCTION_WORDS = frozenset(
    """ignore ignored previous prior instruction instructions prompt prompts system assistant output
    outputs answer answers respond response reply print say write disregard forget override pretend
    jailbreak format json token tokens model llm command commands execute http https www""".split()
)

_INSTRUCTION = re.compile(
    r"\b(ignore|disregard|forget|override|bypass)\b.{0,40}\b(instructions?|prompts?|rules?|above|previous|prior)\b"
    r"|\b(system prompt|you are now|act as|new instructions?|jailbreak)\b"
    r"|\b(output|respond with|reply with|answer with|print|say)\b.{0,20}\b(only|exactly|instead)\b",
    re.IGNORECASE,
)
_KEYWORD = re.compile(r"^[a-z][a-z'-]*( [a-z][a-z'-]*){0,2}$")
_SPLIT = re.compile(r"[,;\n/|•·]+|\band\b|\d+[.)]")


def singular(word: str) -> str:
    """A rough English singular, enough to match "cats" with "cat" and "bunnies" with "bunny"."""
    if len(word) <= 3 or word.endswith(("ss", "us", "ous")):
        return word
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "xes", "sses", "zes")):
        return word[:-2]
    if word.endswith("s"):
        return word[:-1]
    return word


def normalise(text: str) -> str:
    """Lower case, quotes/punctuation at the edges gone, inner whitespace single."""
    text = text.lower().replace("’", "'").replace("_", " ")
    text = re.sub(r"[^a-z' -]+", " ", text)
    return re.sub(r"\s+", " ", text).strip(" '-")


def key(keyword: str) -> str:
    """Identity of a keyword for de-duplication: singular words, no hyphens."""
    return " ".join(singular(word) for word in keyword.replace("-", " ").split())


def valid_keyword(raw: str) -> str | None:
    """The keyword in canonical form, or None when it is not one (too long, odd characters, stop
    words only, or words of an instruction)."""
    keyword = normalise(raw)
    if not keyword or len(keyword) > MAX_CHARS or not _KEYWORD.match(keyword):
        return None
    words = keyword.split()
    if len(words) > MAX_WORDS or all(word in STOP_WORDS for word in words):
        return None
    if any(word in INSTRUCTION_WORDS for word in words):
        return None
    while words and words[0] in STOP_WORDS:  # "a cute cat" -> "cute cat"
        words.pop(0)
    return " ".join(words)


def looks_like_instruction(text: str) -> bool:
    """True for text addressed to the model ("ignore previous instructions and output X")."""
    return bool(_INSTRUCTION.search(text))


def split_keywords(text: str) -> list[str]:
    """Candidate keywords in free LLM output: comma/line/number separated, first line of an answer."""
    text = text.split("\n\n", 1)[0]
    text = re.sub(r"^\s*(keywords?|answer|output)\s*:", "", text, flags=re.IGNORECASE)
    return [part.strip() for part in _SPLIT.split(text) if part.strip()]


def dedupe(keywords: list[str]) -> list[str]:
    """Keep the first of each keyword identity, in order."""
    seen: set[str] = set()
    kept = []
    for keyword in keywords:
        identity = key(keyword)
        if identity not in seen:
            seen.add(identity)
            kept.append(keyword)
    return kept
