"""Which character a history shows: names, aliases, synonyms and set titles as evidence."""

from __future__ import annotations

from pmg_engine.behaviors import StickerSent
from pmg_engine.characters import canonical, character_evidence, sticker_character


def test_the_character_of_a_sticker_comes_from_its_name_without_the_face() -> None:
    assert sticker_character(StickerSent("😻")) == "cat"  # smiling cat with heart-eyes
    assert sticker_character(StickerSent("🙈")) == "monkey"  # see-no-evil monkey
    assert sticker_character(StickerSent("🦕")) == "dinosaur"  # sauropod
    assert sticker_character(StickerSent("☕")) == "coffee"  # hot beverage
    assert sticker_character(StickerSent("⚽")) == "soccer ball"
    assert sticker_character(StickerSent("🐻‍❄️")) == "bear"  # polar bear


def test_faces_hearts_and_gestures_are_not_characters() -> None:
    for symbol in ("😂", "👍", "💖", "🔥", "✨"):
        assert sticker_character(StickerSent(symbol)) is None, symbol


def test_synonyms_map_to_the_generic_word() -> None:
    assert canonical("Corgis") == "dog"
    assert canonical("bunnies") == "rabbit"
    assert canonical("T-Rex") == "dinosaur"
    assert canonical("giraffe") == "giraffe"


def test_evidence_counts_votes_and_set_titles_only_for_characters_seen() -> None:
    stickers = [
        StickerSent("🐶", None, "Corgi Club"),
        StickerSent("🐕", None, "Corgi Club"),
        StickerSent("🐱", None, ""),
        StickerSent("😂", None, "Pizza Party"),  # the title names no character the stickers show
    ]

    evidence = character_evidence(stickers)

    assert [(e.character, e.count) for e in evidence] == [("dog", 3.0), ("cat", 1.0)]
    assert "corgi" in evidence[0].aliases


def test_a_majority_beats_noise() -> None:
    stickers = [StickerSent(e) for e in "🐼🐼🔥🐼🐶😂🐼"]

    assert character_evidence(stickers)[0].character == "panda"
