"""The tiny profile: a random SD1.5-architecture pipeline through the exact sd15 code path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pmg_engine.candidates import StickerRequest
from pmg_engine.conditioning import CONTEXT, encode_prompts, fit_condition
from pmg_engine.diffusion import DiffusionGenerator, DiffusionOptions, target_prompt
from pmg_engine.random_models import TinyModels
from pmg_engine.scoring import ClipScorer

WEIGHTS = [(0.0, 4.0), (1.0, 3.0), (2.0, 2.0), (3.0, 1.0), (4.0, 0.0)]


@pytest.fixture(scope="module")
def generator(tiny_models: TinyModels) -> DiffusionGenerator:
    return DiffusionGenerator.load(
        str(tiny_models.sd_folder), options=DiffusionOptions(steps=3), safety_checker=False
    )


def request(seed: int = 7, **changes: object) -> StickerRequest:
    fields: dict[str, object] = {
        "preference_keywords": ["cat", "orange", "cute"],
        "target_keywords": ["sad", "teary eyes", "frown"],
        "mood": "sadness",
        "weight_sets": WEIGHTS,
        "seed": seed,
    }
    return StickerRequest(**{**fields, **changes})  # type: ignore[arg-type]


def pixels(generator: DiffusionGenerator, *requests: StickerRequest) -> list[np.ndarray]:
    return [
        np.asarray(c.image, dtype=np.int16) for s in generator.generate(list(requests)) for c in s.candidates
    ]


def test_five_candidates_in_one_batch_are_deterministic(generator: DiffusionGenerator) -> None:
    first, second = pixels(generator, request()), pixels(generator, request())
    assert len(first) == 5 and first[0].shape == (64, 64, 3)
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    # A pixel slice of the first candidate, as diffusers' own tests pin theirs (weights are seeded).
    expected = np.array([[135, 58, 156], [115, 151, 154], [141, 158, 203]])  # DPM-Solver++, 3 steps
    assert np.abs(first[0][30, 30:33] - expected).max() <= 2


def test_each_candidate_depends_on_its_own_seed_not_on_the_batch(generator: DiffusionGenerator) -> None:
    batched = pixels(generator, request())
    alone = pixels(generator, request(weight_sets=[WEIGHTS[2]], seed=7 + 2))
    assert np.abs(batched[2] - alone[0]).max() <= 2
    assert not np.array_equal(pixels(generator, request(seed=8))[0], batched[0])


def test_candidates_record_seeds_and_weights(generator: DiffusionGenerator) -> None:
    [candidates] = generator.generate([request(seed=100)])
    assert [c.seed for c in candidates.candidates] == [100, 101, 102, 103, 104]
    assert [c.weights for c in candidates.candidates] == WEIGHTS
    assert candidates.candidates[1].details["w_p"] == pytest.approx(1 / 3, abs=1e-4)


def test_conditions_are_the_weighted_parts_in_77_rows(generator: DiffusionGenerator) -> None:
    pipe = generator.pipeline
    prompt_embeds, negative = generator.conditions([request()])
    assert prompt_embeds.shape == negative.shape == (5, CONTEXT, 32)
    texts = ["", "cat, orange, cute", target_prompt(["sad", "teary eyes", "frown"], generator.options.frame)]
    [_, keywords, target], hidden = encode_prompts(pipe.tokenizer, pipe.text_encoder, texts)
    expected = fit_condition(hidden[0], keywords.body, target.body, (1 / 3, 1.0))
    assert torch.allclose(prompt_embeds[1], expected, atol=1e-6)
    only_target = fit_condition(hidden[0], keywords.body, target.body, (0.0, 1.0))
    assert torch.allclose(prompt_embeds[0], only_target, atol=1e-6)


def test_soft_embeddings_enter_the_preference_part(generator: DiffusionGenerator) -> None:
    soft = torch.full((4, 32), 0.5)
    with_soft, _ = generator.conditions([request(soft_embeddings=soft)])
    assert torch.allclose(with_soft[4, 1:5], soft)  # 4:0 -> w_p = 1: the soft rows right after BOS
    without, _ = generator.conditions([request()])
    assert not torch.allclose(with_soft[4], without[4])


def test_clip_scorer_gives_cosines_and_no_keywords_means_no_say(
    generator: DiffusionGenerator, tiny_models: TinyModels
) -> None:
    scorer = ClipScorer(tiny_models.clip_name, tiny_models.clip_weights)
    [candidates] = generator.generate([request()])
    d_p, d_t = scorer.similarities(candidates.candidates, "cat, orange", "sad, frown")
    assert len(d_p) == len(d_t) == 5
    assert all(-1.0 <= d <= 1.0 for d in d_p + d_t)
    assert len(set(d_p)) > 1  # different images, different cosines
    no_preference, _ = scorer.similarities(candidates.candidates, "", "sad, frown")
    assert no_preference == [1.0] * 5
