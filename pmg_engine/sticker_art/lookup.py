"""Which emoji's OpenMoji art draws a character keyword ("Corgi" -> 🐶), by the rules of
OFFLINE_STICKERS.md "Keyword → character"; no art means an error with choices, never a random emoji."""

from __future__ import annotations

import dataclasses
import difflib
import functools
import unicodedata
from collections import defaultdict
from collections.abc import Sequence

import emoji

from pmg_engine.behaviors import emoji_aliases, emoji_name
from pmg_engine.characters import ELEMENT_HEADS, SYNONYMS, canonical
from pmg_engine.keyword_rules import key, normalise, singular
from pmg_engine.preferences import COLOUR_WORDS, DECORATION_WORDS, FACE_WORDS, STYLE_WORDS
from pmg_engine.sticker_art.openmoji_files import has_art

# Words of a look, a colour or a decoration: a keyword made only of them names no character.
# Decorations the synonym table calls characters (coffee, ghost) stay characters.
NOT_CHARACTER_WORDS = (
    STYLE_WORDS
    | COLOUR_WORDS
    | FACE_WORDS
    | ELEMENT_HEADS
    | (DECORATION_WORDS - set(SYNONYMS.values()))
    | {"minimal", "style", "aesthetic", "sticker"}
)

# Typos are corrected only to characters (animals and the synonym table), in words of 5+ letters:
# one edit from an emoji name is often another English word ("father" -> "feather", "late" -> "latte").
# Measured on 600 common words: these settings take 2 ("money" -> "monkey", "board" -> "boar").
# Expression variants are the character's face: a user who sends 😾 and 🙀 sends cat faces (🐱).
EXPRESSION_OF = {**dict.fromkeys("😺😸😹😻😼😽🙀😿😾", "🐱"), **dict.fromkeys("🙈🙉🙊", "🐵")}
FUZZY_CUTOFF = 0.85
FUZZY_MIN_LETTERS = 5
SUGGESTION_CUTOFF = 0.6  # a near miss among all names is a better choice than any animal
SUGGESTIONS = 3
# Faces first (they carry the mood: design rule 1), then the emoji's own name, an alias, a synonym.
FACE, NAME, ALIAS, SYNONYM = range(4)

# No emoji for these: regional indicators (flags), tag sequences (subdivision flags), keycaps, skin tones.
_EXCLUDED_CODEPOINTS = (range(0x1F1E6, 0x1F200), range(0xE0020, 0xE0080), range(0x20E3, 0x20E4))
_SKIN_TONES = range(0x1F3FB, 0x1F400)
# Where Unicode puts animals: the fuzzy targets, and the choices offered for an animal without an
# emoji (capybara -> crab, boar, bear).
_ANIMAL_CODEPOINTS = (
    range(0x1F400, 0x1F43F),
    range(0x1F54A, 0x1F54B),
    range(0x1F577, 0x1F578),
    range(0x1F980, 0x1F9AF),
    range(0x1FAB0, 0x1FAB4),
    range(0x1FABC, 0x1FABD),
    range(0x1FABF, 0x1FAC0),
    range(0x1FACE, 0x1FAD0),
)


@dataclasses.dataclass(frozen=True)
class CharacterArt:
    """The emoji whose OpenMoji art draws a character keyword, and why it was chosen."""

    keyword: str  # what was asked, as given ("Corgi")
    emoji: str  # the emoji drawn ("🐶")
    name: str  # its plain CLDR name ("dog face")
    rule: str  # which rule matched: "sent" | "synonym" | "name" | "words" | "language" | "fuzzy"


class UnknownCharacterError(LookupError):
    """No art draws the keyword; the message says so and offers the closest names."""

    def __init__(self, keyword: str, suggestions: list[str]) -> None:
        self.keyword = keyword
        self.suggestions = suggestions  # plain names with their emoji: "otter 🦦"
        closest = f" (closest: {', '.join(suggestions)})" if suggestions else ""
        super().__init__(f"no art for {keyword!r}{closest}")


@dataclasses.dataclass(frozen=True)
class _Index:
    """Every fully-qualified emoji with OpenMoji art, by the words that name it."""

    names: dict[str, str]  # emoji -> plain English name
    by_plain: dict[str, str]  # emoji without U+FE0F -> emoji as indexed
    ranked: dict[str, list[tuple[int, str]]]  # English key -> (FACE…SYNONYM, emoji), best first
    characters: dict[str, frozenset[str]]  # emoji -> the canonical characters its names give
    phrases: dict[str, str]  # key of a name or alias -> emoji, for the words rule
    phrases_with: dict[str, set[str]]  # word -> those phrases containing it
    native: dict[str, str]  # key of a name in another language -> emoji
    vocabulary: list[str]  # animal names and the synonym table's words, for fuzzy matching
    animals: dict[str, str]  # plain name -> emoji, animals only


def _plain(text: str) -> str:
    """Lower-case ASCII words: accents folded ("Piñata" -> "pinata") before `normalise` drops the rest."""
    folded = unicodedata.normalize("NFKD", text)
    return normalise("".join(ch for ch in folded if not unicodedata.combining(ch)))


def _spaced(name: str) -> str:
    """An `emoji` package name in plain words (":cara_de_gato:" -> "cara de gato")."""
    return name.strip(":").replace("_", " ")


def _drawable(symbol: str, status: int) -> bool:
    """A fully-qualified emoji with OpenMoji art that draws a thing (no flag, keycap or skin tone)."""
    if status != emoji.STATUS["fully_qualified"] or not has_art(symbol):
        return False
    return not any(ord(ch) in span for ch in symbol for span in (*_EXCLUDED_CODEPOINTS, _SKIN_TONES))


def _is_animal(symbol: str) -> bool:
    return any(ord(symbol[0]) in span for span in _ANIMAL_CODEPOINTS)


@functools.cache
def _index() -> _Index:
    emoji.config.load_language()  # the other languages' names, into `emoji.EMOJI_DATA`
    names: dict[str, str] = {}
    ranked: defaultdict[str, list[tuple[int, str]]] = defaultdict(list)
    characters: dict[str, frozenset[str]] = {}
    phrases: dict[str, str] = {}
    native: dict[str, str] = {}
    for symbol, data in emoji.EMOJI_DATA.items():
        if not _drawable(symbol, data["status"]):
            continue
        name = emoji_name(symbol) or ""
        names[symbol] = name
        own = [(NAME, key(_plain(name)))] + [(ALIAS, key(_plain(a))) for a in emoji_aliases(symbol)]
        own = [(rank, phrase) for rank, phrase in own if phrase]
        faces = [(FACE, phrase.removesuffix(" face")) for _, phrase in own if phrase.endswith(" face")]
        synonyms = [(SYNONYM, canonical(phrase)) for _, phrase in own + faces]
        for rank, phrase in own + faces + synonyms:
            ranked[phrase].append((rank, symbol))
        characters[symbol] = frozenset(phrase for _, phrase in synonyms)
        for _, phrase in own:
            phrases.setdefault(phrase, symbol)
        for language in emoji.LANGUAGES:
            if language != "en" and language in data:
                text = _spaced(data[language])
                native.setdefault(key(_plain(text)) or text.casefold(), symbol)
    phrases_with: defaultdict[str, set[str]] = defaultdict(set)
    for phrase in phrases:
        for word in phrase.split():
            phrases_with[word].add(phrase)
    animals = {names[s]: s for s in names if _is_animal(s)}
    animal_keys = {key(_plain(name)) for name in animals}
    vocabulary = {k.removesuffix(" face") for k in animal_keys} | set(SYNONYMS) | set(SYNONYMS.values())
    # Best first: the rank, then a single emoji over a sequence, then the Unicode data's order.
    order = {symbol: position for position, symbol in enumerate(names)}
    for candidates in ranked.values():
        candidates.sort(key=lambda item: (item[0], len(item[1]), order[item[1]]))
    return _Index(
        names=names,
        by_plain={symbol.replace("\ufe0f", ""): symbol for symbol in names},
        ranked=dict(ranked),
        characters=characters,
        phrases=phrases,
        phrases_with=dict(phrases_with),
        native=native,
        vocabulary=sorted(vocabulary),
        animals=animals,
    )


def _best(index: _Index, phrase: str, named: str = "") -> str | None:
    """The emoji a key names best; among equals, one whose own name is `named` ("t rex" -> 🦖)."""
    candidates = index.ranked.get(phrase)
    if not candidates:
        return None
    top = candidates[0][0]
    equals = [symbol for rank, symbol in candidates if rank == top]
    return next((s for s in equals if key(_plain(index.names[s])) == named), equals[0])


def _by_words(index: _Index, phrase: str) -> str | None:
    """The emoji of the shortest name or alias containing every word of the phrase."""
    sets = [index.phrases_with.get(word, set()) for word in phrase.split()]
    found = set.intersection(*sets) if sets else set()
    return index.phrases[min(found, key=lambda p: (len(p), p))] if found else None


def _resolve(index: _Index, words: str) -> tuple[str, str] | None:
    """Rules 2 and 3 for plain English words: the synonym table, then the names themselves."""
    phrase, character = key(words), canonical(words)
    if character != phrase and (symbol := _best(index, character, named=phrase)):
        return symbol, "synonym"
    symbol = _best(index, phrase)
    return (symbol, "name") if symbol else None


@functools.lru_cache(maxsize=4096)
def _lookup(keyword: str) -> tuple[str, str] | None:
    """Rules 2 to 6 for one keyword: (emoji, rule), or None when no art draws it."""
    index = _index()
    words = _plain(keyword)
    phrase = key(words)
    if phrase and (found := _resolve(index, words)):
        return found
    if phrase and (symbol := _by_words(index, phrase)):
        return symbol, "words"
    foreign = index.native.get(phrase or keyword.strip().casefold())
    if foreign:  # the English name's best art: "gato" is 🐈 "cat", drawn as 🐱 "cat face"
        return _best(index, key(_plain(index.names[foreign]))) or foreign, "language"
    if len(phrase) < FUZZY_MIN_LETTERS:
        return None
    typos = difflib.get_close_matches(phrase, index.vocabulary, n=1, cutoff=FUZZY_CUTOFF)
    found = _resolve(index, typos[0]) if typos else None
    return (found[0], "fuzzy") if found else None


@functools.lru_cache(maxsize=1024)
def _suggestions(keyword: str) -> tuple[str, ...]:
    """Near misses among all names, then the closest animal names: choices, never a substitute."""
    index = _index()
    phrase = _plain(keyword) or keyword.strip().casefold()
    near = difflib.get_close_matches(phrase, list(index.animals), SUGGESTIONS, 0.0)
    close = difflib.get_close_matches(phrase, list(index.names.values()), SUGGESTIONS, SUGGESTION_CUTOFF)
    by_name = {name: symbol for symbol, name in index.names.items()}
    chosen = list(dict.fromkeys(close + near))[:SUGGESTIONS]
    return tuple(f"{name} {by_name[name]}" for name in chosen)


def _sent(index: _Index, keyword: str, sent_emoji: Sequence[str]) -> str | None:
    """Rule 1: an emoji the user sent that draws the keyword's character, its "X face" art first."""
    character = canonical(_plain(keyword))
    plain = [symbol.replace("\ufe0f", "") for symbol in sent_emoji]
    drawn = [index.by_plain.get(EXPRESSION_OF.get(symbol, symbol)) for symbol in plain]
    matching = [s for s in drawn if s and character in index.characters[s]]
    return min(matching, key=lambda s: (FACE, s) not in index.ranked[character], default=None)


def find_character_art(keyword: str, *, sent_emoji: Sequence[str] = ()) -> CharacterArt:
    """The emoji whose art draws `keyword` ("Corgi" -> 🐶 by the synonym table); an emoji the user sent
    wins. Raises ValueError for a blank keyword and UnknownCharacterError when no art draws it."""
    if not keyword.strip():
        raise ValueError("a character keyword is needed, got a blank one")
    index = _index()
    symbol = _sent(index, keyword, sent_emoji)
    found = (symbol, "sent") if symbol else _lookup(keyword)
    if found is None:
        raise UnknownCharacterError(keyword, list(_suggestions(keyword)))
    return CharacterArt(keyword, found[0], index.names[found[0]], found[1])


def _character_words(keyword: str) -> str:
    """The keyword without its colour, style and decoration words ("cute orange cat" -> "cat")."""
    return " ".join(
        word
        for word in _plain(keyword).split()
        if word not in NOT_CHARACTER_WORDS and singular(word) not in NOT_CHARACTER_WORDS
    )


def character_art(
    keywords: Sequence[str], *, sent_emoji: Sequence[str] = ()
) -> tuple[CharacterArt | None, list[str]]:
    """The art of the first keyword, in order, that is a character with art, and a note for each
    character keyword before it that no art draws ("no art for 'capybara' (closest: …)")."""
    notes: list[str] = []
    for keyword in keywords:
        words = _character_words(keyword)
        if not words:
            continue  # a colour, a style or a decoration: not a character, nothing to say
        try:
            art = find_character_art(words, sent_emoji=sent_emoji)
            return dataclasses.replace(art, keyword=keyword), notes
        except UnknownCharacterError as error:
            notes.append(str(error))
    return None, notes
