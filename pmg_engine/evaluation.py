"""Quality bars: character and mood on labelled personas (stage 1 and the chosen sticker), and mood on
MELD, GoEmotions and the challenge set, each beside the nade baseline."""

from __future__ import annotations

import csv
import itertools
import json
import time
import warnings
from collections import defaultdict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

from pmg_engine.behaviors import StickerSent, UserBehaviors
from pmg_engine.candidates import StickerRequest, normalise_weights
from pmg_engine.keyword_rules import key
from pmg_engine.keywords import KeywordEngine
from pmg_engine.mood_data import MOODS
from pmg_engine.mood_scores import accuracy, mood_scores
from pmg_engine.sticker_result import ScoredCandidate
from pmg_engine.understanding import Understanding

if TYPE_CHECKING:
    from pmg_engine.mood_data import MoodPrediction

MELD_LABELS = ("anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise")
MELD_COLUMNS = ("Utterance", "Emotion", "Dialogue_ID", "Speaker")  # in MeldUtterance's order
NADE_NEUTRAL_BELOW = 0.3  # gives nade its documented ≈ 0.45 weighted F1 on MELD test
TO_MELD = {"love": "joy", "tired": "sadness"}  # our nine moods on MELD's seven
UNMAPPED: Mapping[str, str] = MappingProxyType({})  # where the gold labels are our moods


@dataclass(frozen=True)
class Persona:
    id: str
    behaviors: UserBehaviors
    characters: list[str]
    mood: str


def load_personas(path: Path) -> list[Persona]:
    """Users in the JSON Lines format of shared/data/personas_dev.jsonl."""
    personas = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            behaviors = UserBehaviors(
                stickers=[StickerSent(**sticker) for sticker in row.get("stickers", [])],
                messages=list(row.get("messages", [])),
                conversation=list(row.get("conversation", [])),
            )
            personas.append(
                Persona(str(row["id"]), behaviors, row["expect"]["character"], row["expect"]["mood"])
            )
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"{path}:{number}: not a persona line ({error})") from error
    return personas


def character_matches(keyword: str, expected: list[str]) -> bool:
    """Case-insensitive, singular and plural alike."""
    return key(keyword.lower()) in {key(word.lower()) for word in expected}


def stage1_row(persona: Persona, understanding: Understanding, seconds: float) -> dict[str, Any]:
    """How stage 1 did on one labelled user."""
    keywords = understanding.preferences.keywords
    return {
        "id": persona.id,
        "character_hit": any(character_matches(k, persona.characters) for k in keywords),
        "character_top1": bool(keywords) and character_matches(keywords[0], persona.characters),
        "mood_correct": understanding.mood.mood == persona.mood,
        "expected_character": persona.characters,
        "expected_mood": persona.mood,
        "mood": understanding.mood.mood,
        "preference_keywords": keywords,
        "target_keywords": understanding.target_keywords,
        "fallback": understanding.preferences.fallback,
        "seconds": round(seconds, 3),
    }


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Rates over all users, and the rows themselves."""
    n = len(rows)
    return {
        "n": n,
        "character_hit_rate": _rate(rows, "character_hit"),
        "character_top1_rate": _rate(rows, "character_top1"),
        "mood_accuracy": _rate(rows, "mood_correct"),
        "seconds_per_user": round(sum(row["seconds"] for row in rows) / max(n, 1), 3),
        "users": rows,
    }


def evaluate_personas(
    engine: KeywordEngine, personas: list[Persona], progress: Callable[[int], None] = lambda done: None
) -> dict[str, Any]:
    """Each user cold (no cache), one at a time, as a first /sticker would be."""
    rows: list[dict[str, Any]] = []
    for done, persona in enumerate(personas, start=1):
        started = time.perf_counter()
        [understanding] = engine.understand([persona.behaviors])
        rows.append(stage1_row(persona, understanding, time.perf_counter() - started))
        progress(done)
    return summary(rows) | {"nade_mood_accuracy": nade_mood_accuracy(personas)}


def _rate(rows: list[dict[str, Any]], name: str) -> float:
    return round(sum(bool(row[name]) for row in rows) / max(len(rows), 1), 4)


class MoodPredictor(Protocol):
    """What the mood evaluations need of a mood model: `MoodModel`, or a fake in tests."""

    def predict(self, conversations: list[list[str]]) -> list[MoodPrediction]: ...


@dataclass(frozen=True)
class MeldUtterance:
    text: str
    emotion: str  # one of MELD_LABELS
    dialogue: str
    speaker: str


def load_meld(path: Path, limit: int | None = None) -> list[MeldUtterance]:
    """The utterances of a MELD csv in file order, which is the order they were said in each dialogue."""
    with path.open(encoding="utf-8", errors="replace", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = sorted(set(MELD_COLUMNS) - set(reader.fieldnames or []))
        if missing:
            raise ValueError(f"no column {', '.join(missing)}")
        rows = []
        for row in itertools.islice(reader, limit):
            if row["Emotion"] not in MELD_LABELS:
                raise ValueError(
                    f"line {reader.line_num}: {row['Emotion']!r} is not one of MELD's seven emotions"
                )
            rows.append(MeldUtterance(*(row[column] for column in MELD_COLUMNS)))
    return rows


def meld_conversations(rows: list[MeldUtterance], *, context: bool, turns: int = 3) -> list[list[str]]:
    """Each utterance as the bot would see it: alone, or with `context` after up to `turns` - 1 earlier
    utterances of the same speaker in the same dialogue, since the bot reads only its user's turns."""
    if not context:
        return [[row.text] for row in rows]
    earlier: defaultdict[tuple[str, str], deque[str]] = defaultdict(lambda: deque(maxlen=turns - 1))
    conversations = []
    for row in rows:
        said = earlier[row.dialogue, row.speaker]
        conversations.append([*said, row.text])
        said.append(row.text)
    return conversations


@dataclass(frozen=True)
class Challenge:
    kind: str  # what makes it hard: negation, sarcasm, shift, context, logistics, multilingual
    mood: str
    conversation: tuple[str, ...]  # the user's turns, latest last


def load_challenges(path: Path) -> list[Challenge]:
    """A `kind<TAB>mood<TAB>conversation` file with that header; turns are separated by ` || `."""
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        if reader.fieldnames != ["kind", "mood", "conversation"]:
            raise ValueError("the header must be kind<TAB>mood<TAB>conversation")
        challenges = []
        for row in reader:
            if not row["conversation"] or row["mood"] not in MOODS:
                raise ValueError(
                    f"line {reader.line_num}: expected a kind, one of our moods and a conversation"
                )
            turns = tuple(turn.strip() for turn in row["conversation"].split("||"))
            challenges.append(Challenge(row["kind"], row["mood"], turns))
    return challenges


@cache
def _nade() -> Any | None:
    """nade's model, loaded once (a few seconds); None when the package is not installed."""
    try:
        from nade import Nade
    except ImportError:
        return None
    with warnings.catch_warnings():  # it warns once per emotion model it unpacks: nothing to act on
        warnings.simplefilter("ignore")
        return Nade()


def nade_moods(texts: list[str], neutral_below: float = NADE_NEUTRAL_BELOW) -> list[str] | None:
    """The `nade` emotion model's mood per text, the baseline: its strongest of MELD's six emotions, or
    neutral when none reaches `neutral_below` (so never love or tired). None when nade is not installed."""
    model = _nade()
    if model is None:
        return None
    if not texts:
        return []
    emotions = [label for label in MELD_LABELS if label != "neutral"]
    raw = model.predict(texts)  # {emotion: arrow array, one score per text}, anticipation and trust too
    moods = []
    for scores in zip(*(raw[emotion].to_pylist() for emotion in emotions), strict=True):  # one per emotion
        best = max(range(len(emotions)), key=scores.__getitem__)
        moods.append(emotions[best] if scores[best] >= neutral_below else "neutral")
    return moods


@dataclass(frozen=True)
class Predicted:
    moods: list[str]
    seconds: float  # for all of them, loading the model excluded


def _timed(predict: Callable[[], list[str] | None], to_label: Mapping[str, str]) -> Predicted | None:
    started = time.perf_counter()
    moods = predict()
    seconds = time.perf_counter() - started
    return None if moods is None else Predicted([to_label.get(mood, mood) for mood in moods], seconds)


def _predict_both(
    mood_model: MoodPredictor, conversations: list[list[str]], to_label: Mapping[str, str], batch: int
) -> dict[str, Predicted | None]:
    """Ours and nade's mood per conversation, mapped by `to_label`; nade reads a conversation's turns as
    one text, and is None when it is not installed."""

    def ours() -> list[str]:
        return [
            prediction.mood
            for start in range(0, len(conversations), batch)
            for prediction in mood_model.predict(conversations[start : start + batch])
        ]

    nade_moods([])  # loads nade before its clock starts, as ours was loaded before
    return {
        "pmg": _timed(ours, to_label),
        "nade": _timed(lambda: nade_moods([" ".join(turns) for turns in conversations]), to_label),
    }


def _scored(
    predictions: dict[str, Predicted | None], gold: list[str], labels: Sequence[str]
) -> dict[str, Any]:
    return {
        name: None
        if predicted is None
        else {
            **mood_scores(gold, predicted.moods, labels),
            "seconds_per_conversation": round(predicted.seconds / max(len(gold), 1), 4),
        }
        for name, predicted in predictions.items()
    }


def compare_moods(
    mood_model: MoodPredictor,
    conversations: list[list[str]],
    gold: list[str],
    labels: Sequence[str],
    *,
    to_label: Mapping[str, str] = UNMAPPED,
    batch: int = 64,
) -> dict[str, Any]:
    """Ours beside nade on the same conversations: {"pmg": scores, "nade": scores or None}, each scored on
    `labels` (see `mood_scores`) with seconds per conversation."""
    return _scored(_predict_both(mood_model, conversations, to_label, batch), gold, labels)


def evaluate_challenges(
    mood_model: MoodPredictor, challenges: list[Challenge], batch: int = 64
) -> dict[str, Any]:
    """`compare_moods` on all nine moods, and each model's accuracy per kind of challenge."""
    gold = [challenge.mood for challenge in challenges]
    conversations = [list(challenge.conversation) for challenge in challenges]
    predictions = _predict_both(mood_model, conversations, UNMAPPED, batch)
    per_kind: dict[str, dict[str, Any]] = {}
    for kind in dict.fromkeys(challenge.kind for challenge in challenges):
        rows = [i for i, challenge in enumerate(challenges) if challenge.kind == kind]
        per_kind[kind] = {"n": len(rows)} | {
            name: None
            if predicted is None
            else round(accuracy([gold[i] for i in rows], [predicted.moods[i] for i in rows]), 4)
            for name, predicted in predictions.items()
        }
    return _scored(predictions, gold, MOODS) | {"per_kind": per_kind}


def nade_mood_accuracy(personas: list[Persona]) -> float | None:
    """nade's mood accuracy on the personas' conversations; None when nade is not installed."""
    moods = nade_moods([" ".join(persona.behaviors.conversation) for persona in personas])
    return None if moods is None else round(accuracy([persona.mood for persona in personas], moods), 4)


def _draws(emoji: str, characters: list[str]) -> bool:
    """Whether the offline art `emoji` is what an expected character name would be drawn with."""
    from pmg_engine.sticker_art.lookup import UnknownCharacterError, find_character_art

    for character in characters:
        try:
            if find_character_art(character).emoji == emoji:
                return True
        except UnknownCharacterError:
            continue
    return False


def sticker_shows(chosen: ScoredCandidate, request: StickerRequest, persona: Persona) -> tuple[bool, bool]:
    """(expected character shown, expected mood shown) by the chosen sticker, judged from what it was
    made of: a part with weight 0 is not in the picture; the offline composition names its character."""
    w_p, w_t = normalise_weights(*chosen.candidate.weights)
    details = chosen.candidate.details
    if "character" in details:  # offline: the composition says which art it drew
        drawn, name = details["character"], details.get("character_name") or ""
        character = drawn is not None and (
            character_matches(name, persona.characters) or _draws(drawn, persona.characters)
        )
    else:  # diffusion: the preference keywords it was conditioned on
        character = any(character_matches(k, persona.characters) for k in request.preference_keywords)
    return w_p > 0 and character, w_t > 0 and request.mood == persona.mood


def sticker_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Stage 1's summary plus how often the chosen sticker shows the expected character and mood."""
    return {
        **summary(rows),
        "sticker_character_rate": _rate(rows, "sticker_character"),
        "sticker_mood_rate": _rate(rows, "sticker_mood"),
    }
