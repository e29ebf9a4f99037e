"""Keyword -> OpenMoji art: the lookup rules of OFFLINE_STICKERS.md on the real emoji data, no mocks."""

from __future__ import annotations

import pytest

from pmg_engine.sticker_art.lookup import (
    CharacterArt,
    UnknownCharacterError,
    character_art,
    find_character_art,
)
from pmg_engine.sticker_art.openmoji_files import has_art


def _art(keyword: str, sent_emoji: tuple[str, ...] = ()) -> tuple[str, str]:
    art = find_character_art(keyword, sent_emoji=sent_emoji)
    assert has_art(art.emoji), art  # only emoji OpenMoji draws may come back
    return art.emoji, art.rule


@pytest.mark.parametrize(
    ("keyword", "expected"),
    [
        ("cat", ("🐱", "name")),  # the front-facing "cat face", not 🐈 "cat"
        ("dog", ("🐶", "name")),
        ("tiger", ("🐯", "name")),
        ("panda", ("🐼", "name")),
        ("robot", ("🤖", "name")),
        ("Cats", ("🐱", "name")),  # plural and case
        ("Corgi", ("🐶", "synonym")),
        ("latte", ("☕", "synonym")),  # hot beverage
        ("coffee", ("☕", "name")),  # its alias
        ("t-rex", ("🦖", "synonym")),  # "dinosaur" has two emoji: the one named so wins
        ("bones", ("💀", "synonym")),  # the curated table beats the name of 🦴 "bone"
        ("polar", ("🐻‍❄️", "words")),  # "polar bear"
        ("gato", ("🐱", "language")),  # Spanish/Portuguese 🐈, drawn as the cat face
        ("Katze", ("🐱", "language")),
        ("chien", ("🐶", "language")),
        ("猫", ("🐱", "language")),  # Chinese
        ("pandda", ("🐼", "fuzzy")),
        ("dinosuar", ("🦖", "fuzzy")),
        ("Piñata", ("🪅", "name")),  # accents folded, not dropped
    ],
)
def test_keywords_find_their_art_by_the_first_rule_that_matches(
    keyword: str, expected: tuple[str, str]
) -> None:
    assert _art(keyword) == expected


def test_the_result_names_the_keyword_as_asked_and_the_emoji_plainly() -> None:
    assert find_character_art("Corgi") == CharacterArt("Corgi", "🐶", "dog face", "synonym")


def test_an_emoji_the_user_sent_wins_and_among_several_the_face() -> None:
    # Decided: the user's own 🐕 beats the default 🐶; "X face" only breaks ties between sent emoji.
    assert _art("dog", ("🐕",)) == ("🐕", "sent")
    assert _art("dog", ("🐕", "🐶")) == ("🐶", "sent")
    assert _art("Corgi", ("🐈", "🐩")) == ("🐩", "sent")  # poodle: a dog by the synonym table
    assert _art("cat", ("🐈‍⬛",)) == ("🐈‍⬛", "sent")  # black cat
    assert _art("cat", ("😾", "🐈", "🙀")) == ("🐱", "sent")  # expression variants are the cat's face
    assert _art("dog", ("🐈", "🇫🇷", "not an emoji")) == ("🐶", "name")  # none draws a dog


def test_animals_without_an_emoji_raise_with_choices_never_a_substitute() -> None:
    for keyword in ("capybara", "axolotl", "quokka"):
        with pytest.raises(UnknownCharacterError) as caught:
            find_character_art(keyword)
        assert caught.value.keyword == keyword
        assert caught.value.suggestions, keyword
        assert keyword in str(caught.value)
        for suggestion in caught.value.suggestions:
            name, symbol = suggestion.rsplit(" ", 1)
            assert name and has_art(symbol), suggestion


def test_common_words_are_not_fuzzy_matched_into_some_emoji() -> None:
    for keyword in ("hello", "father", "happy", "dream", "late", "music"):
        with pytest.raises(UnknownCharacterError):
            find_character_art(keyword)


def test_a_country_gives_no_flag() -> None:
    for keyword in ("france", "japan"):
        try:
            symbol = find_character_art(keyword).emoji
        except UnknownCharacterError:
            continue
        assert not any(0x1F1E6 <= ord(ch) <= 0x1F1FF for ch in symbol), (keyword, symbol)


def test_a_blank_keyword_is_a_caller_error() -> None:
    # Decided: ValueError, not UnknownCharacterError: there is nothing to offer choices for.
    for keyword in ("", "  "):
        with pytest.raises(ValueError):
            find_character_art(keyword)


def test_the_first_character_with_art_is_drawn_and_skipped_ones_are_noted() -> None:
    art, notes = character_art(["orange", "cute", "capybara", "otter", "cat"])
    assert art is not None and (art.keyword, art.emoji) == ("otter", "🦦")
    assert len(notes) == 1 and "capybara" in notes[0] and "closest:" in notes[0]
    assert not any("orange" in note or "cute" in note for note in notes)


def test_colours_styles_and_decorations_are_no_characters() -> None:
    keywords = ["orange", "kawaii", "pastel pink", "hearts", "sparkles", "outline", "minimal", "pixel"]
    assert character_art(keywords) == (None, [])
    art, notes = character_art(["cute orange cat"])  # the character inside a described keyword
    assert art == CharacterArt("cute orange cat", "🐱", "cat face", "name") and notes == []
    assert character_art(["coffee"])[0] is not None  # a decoration word the synonym table calls a character


def test_character_art_uses_the_sent_emoji_too() -> None:
    art, _ = character_art(["kawaii", "doggo"], sent_emoji=["🐕"])
    assert art is not None and (art.emoji, art.rule) == ("🐕", "sent")
