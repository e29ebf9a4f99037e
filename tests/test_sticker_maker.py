"""Stage 2 end to end on the tiny profile: deny-list, one batch, safety, z, the chosen sticker's files."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from PIL import Image

from pmg_engine.candidates import StickerRequest
from pmg_engine.diffusion import DiffusionGenerator, DiffusionOptions
from pmg_engine.random_models import TinyModels
from pmg_engine.safety import KeywordDenyList, NsfwGate
from pmg_engine.scoring import ClipScorer
from pmg_engine.selection import z_score
from pmg_engine.sticker_result import NothingToDrawError
from pmg_engine.stickers import StickerMaker

WEIGHTS = [(0.0, 4.0), (1.0, 3.0), (2.0, 2.0), (3.0, 1.0), (4.0, 0.0)]


class FlagEverything:
    """Stands in for the NSFW gate: no test should hold an image the real classifier would flag."""

    name = "flags everything"

    def flags(self, images: Sequence[Image.Image]) -> list[bool]:
        return [True] * len(images)


@pytest.fixture(scope="module")
def parts(tiny_models: TinyModels) -> tuple[DiffusionGenerator, ClipScorer]:
    generator = DiffusionGenerator.load(
        str(tiny_models.sd_folder), options=DiffusionOptions(steps=2), safety_checker=False
    )
    return generator, ClipScorer(tiny_models.clip_name, tiny_models.clip_weights)


def request(preference: list[str], target: list[str], seed: int = 3) -> StickerRequest:
    return StickerRequest(preference, target, "joy", WEIGHTS, seed)


def test_the_chosen_candidate_has_the_best_z_and_every_score_is_kept(
    parts: tuple[DiffusionGenerator, ClipScorer],
) -> None:
    maker = StickerMaker(*parts, gate=NsfwGate(), deny_list=KeywordDenyList())
    [first, second] = maker.make(
        [request(["cat", "orange"], ["joyful", "big smile"]), request(["frog"], ["sad", "frown"], seed=9)],
        [0.5, 0.9],
    )
    for result, alpha in ((first, 0.5), (second, 0.9)):
        assert len(result.candidates) == 5
        for scored in result.candidates:
            assert scored.z == pytest.approx(z_score(scored.d_p, scored.d_t, alpha))
        assert result.chosen == max(range(5), key=lambda i: (result.candidates[i].z, -i))
        assert result.files is not None and result.files.webp[:4] == b"RIFF"
        assert set(result.timings) == {"generate", "safety", "score_and_encode"}
    assert first.candidates[0].summary()["seed"] == 3 and second.candidates[0].summary()["seed"] == 9


def test_denied_keywords_never_reach_the_generator(parts: tuple[DiffusionGenerator, ClipScorer]) -> None:
    maker = StickerMaker(*parts, gate=None, deny_list=KeywordDenyList())
    [result] = maker.make([request(["cat", "gore"], ["joyful"])], [0.5])
    assert result.request.preference_keywords == ["cat"]
    assert "gore" not in " ".join(c.candidate.description for c in result.candidates)
    assert result.notes == ["left out: gore"]
    with pytest.raises(NothingToDrawError):
        maker.make([request(["nude"], [])], [0.5])


def test_when_every_candidate_is_flagged_nothing_is_sent(
    parts: tuple[DiffusionGenerator, ClipScorer],
) -> None:
    maker = StickerMaker(*parts, gate=FlagEverything(), deny_list=KeywordDenyList())
    [result] = maker.make([request(["cat"], ["joyful"])], [0.5])
    assert result.chosen is None and result.files is None
    assert all(c.flagged for c in result.candidates)


def test_alpha_out_of_range_is_refused_before_any_work(parts: tuple[DiffusionGenerator, ClipScorer]) -> None:
    maker = StickerMaker(*parts, gate=None, deny_list=KeywordDenyList())
    with pytest.raises(ValueError, match="alpha"):
        maker.make([request(["cat"], ["joyful"])], [42.0])
