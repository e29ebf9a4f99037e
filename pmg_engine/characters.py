"""Which character each sticker shows, from its emoji's names and its set title, with the evidence counted."""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass

from pmg_engine.behaviors import StickerSent, emoji_aliases, emoji_name
from pmg_engine.keyword_rules import key, normalise, singular

# Words that describe a face or a pose, never the character itself.
DESCRIPTORS = frozenset(
    """face head smiling grinning crying weary pouting kissing winking laughing sleeping sleepy happy sad
    angry grumpy cute little baby big tiny chubby fat lazy cheeky wise magic sparkle sparkly spooky
    see-no-evil hear-no-evil speak-no-evil wry smile tears joy heart-eyes eyes open mouth hugging dancing
    running sitting standing""".split()
)

# Decorations and gestures: they go to the `elements` attribute, not to the character.
ELEMENT_HEADS = frozenset(
    """heart hearts sparkles sparkle star stars fire popper points up down hand hands sign horns voltage
    mark button arrow check cross exclamation question symbol lines wave""".split()
)

# Many names, one character: the generic word people use (and a generator draws best).
SYNONYMS = {
    "kitty": "cat",
    "kitten": "cat",
    "catto": "cat",
    "neko": "cat",
    "meow": "cat",
    "black cat": "cat",
    "puppy": "dog",
    "pup": "dog",
    "pupper": "dog",
    "doggo": "dog",
    "doggy": "dog",
    "corgi": "dog",
    "shiba": "dog",
    "shiba inu": "dog",
    "poodle": "dog",
    "pug": "dog",
    "husky": "dog",
    "guide dog": "dog",
    "service dog": "dog",
    "dachshund": "dog",
    "retriever": "dog",
    "bunny": "rabbit",
    "bun": "rabbit",
    "bunbun": "rabbit",
    "t-rex": "dinosaur",
    "t rex": "dinosaur",
    "trex": "dinosaur",
    "sauropod": "dinosaur",
    "dino": "dinosaur",
    "rawr": "dinosaur",
    "raptor": "dinosaur",
    "piggy": "pig",
    "piglet": "pig",
    "oink": "pig",
    "pig nose": "pig",
    "froggy": "frog",
    "toad": "frog",
    "pepe": "frog",
    "pingu": "penguin",
    "ducky": "duck",
    "duckling": "duck",
    "monke": "monkey",
    "ape": "monkey",
    "teddy": "bear",
    "teddy bear": "bear",
    "polar bear": "bear",
    "bear cub": "bear",
    "skelly": "skull",
    "skeleton": "skull",
    "skull and crossbones": "skull",
    "bones": "skull",
    "boo": "ghost",
    "spooky": "ghost",
    "alien monster": "alien",
    "space invader": "alien",
    "ufo": "alien",
    "flying saucer": "alien",
    "robo": "robot",
    "bot": "robot",
    "droid": "robot",
    "octo": "octopus",
    "soccer": "soccer ball",
    "football": "soccer ball",
    "goal net": "soccer ball",
    "hot beverage": "coffee",
    "latte": "coffee",
    "tiger cub": "tiger",
    "tiger face": "tiger",
    "foxy": "fox",
    "owlet": "owl",
    "koala bear": "koala",
}


@dataclass(frozen=True)
class CharacterEvidence:
    """A candidate character, how many stickers show it, and the other words it went by."""

    character: str
    count: float
    aliases: tuple[str, ...]


def canonical(phrase: str) -> str:
    """The generic name of a character phrase ("Corgi" -> "dog", "cats" -> "cat")."""
    phrase = normalise(phrase)
    return SYNONYMS.get(phrase) or SYNONYMS.get(key(phrase)) or key(phrase)


def _head_phrases(name: str) -> list[str]:
    """Character phrases in a name, most specific first: "smiling cat with heart-eyes" -> ["cat"],
    "polar bear" -> ["polar bear", "bear"], "thumbs up" -> [] (a gesture, not a character)."""
    words = [w for w in normalise(name.split(" with ")[0]).split() if w not in DESCRIPTORS]
    if not words or words[-1] in ELEMENT_HEADS:
        return []
    whole = " ".join(words)
    return [whole, words[-1]] if len(words) == 2 else [words[-1]]


def sticker_character(sticker: StickerSent) -> str | None:
    """The character a sticker shows, in its generic name, or None for faces, hearts and gestures."""
    phrases = _head_phrases(sticker.name or emoji_name(sticker.emoji) or "")
    return canonical(phrases[0]) if phrases else None


def title_words(title: str | None) -> list[str]:
    """Canonical words and word pairs of a set title ("Pudgy Penguins" -> [..., "penguin"])."""
    words = normalise(title or "").split()
    phrases = [" ".join(pair) for pair in itertools.pairwise(words)] + words
    return [canonical(phrase) for phrase in phrases]


def _names(alias: str, character: str) -> bool:
    """An alias is another name of the character ("kitty" for cat), not a part of it ("nose" of "pig nose")."""
    return alias != character and canonical(alias) == character


def character_evidence(stickers: list[StickerSent]) -> list[CharacterEvidence]:
    """Candidates ranked by evidence: a vote per sticker showing one, half a vote per set title naming
    one already seen (so "Corgi Club" strengthens "dog" without inventing characters)."""
    counts: defaultdict[str, float] = defaultdict(float)  # insertion order breaks ties: first seen first
    aliases: dict[str, set[str]] = {}
    for sticker in stickers:
        character = sticker_character(sticker)
        if character is None:
            continue
        counts[character] += 1
        names = [sticker.name or "", emoji_name(sticker.emoji) or "", *emoji_aliases(sticker.emoji)]
        aliases.setdefault(character, set()).update(p for name in names for p in _head_phrases(name))
    for sticker in stickers:
        for word in normalise(sticker.set_title or "").split():
            if canonical(word) in counts:
                aliases[canonical(word)].add(singular(word))
        for character in {word for word in title_words(sticker.set_title) if word in counts}:
            counts[character] += 0.5
    return [
        CharacterEvidence(
            character, count, tuple(sorted(a for a in aliases[character] if _names(a, character)))
        )
        for character, count in sorted(counts.items(), key=lambda item: -item[1])
    ]
