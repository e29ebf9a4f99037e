"""The text condition w_p·E^P ⊕ w_t·E^t in 77 rows: weighting, leaving out, fitting, shapes."""

from __future__ import annotations

import pytest
import torch

from pmg_engine.candidates import normalise_weights
from pmg_engine.conditioning import (
    CONTEXT,
    MIN_TARGET_ROWS,
    EncodedPrompt,
    fit_condition,
    preference_rows,
)

D = 8


def rows(n: int, value: float) -> torch.Tensor:
    return torch.full((n, D), value)


@pytest.fixture
def empty() -> torch.Tensor:
    return torch.arange(CONTEXT * D, dtype=torch.float32).reshape(CONTEXT, D) / 1000  # (77, D), distinct rows


@pytest.mark.parametrize(
    ("pair", "expected"),
    [((0, 4), (0, 1)), ((1, 3), (1 / 3, 1)), ((2, 2), (1, 1)), ((3, 1), (1, 1 / 3)), ((4, 0), (1, 0))],
)
def test_the_larger_weight_becomes_one(pair: tuple[float, float], expected: tuple[float, float]) -> None:
    assert normalise_weights(*pair) == pytest.approx(expected)


@pytest.mark.parametrize("pair", [(0, 0), (-1, 2)])
def test_unusable_weights_are_refused(pair: tuple[float, float]) -> None:
    with pytest.raises(ValueError, match="non-negative and not both zero"):
        normalise_weights(*pair)


def test_parts_are_weighted_in_order_and_padding_comes_from_the_empty_prompt(empty: torch.Tensor) -> None:
    condition = fit_condition(empty, rows(5, 2.0), rows(7, 3.0), (1 / 3, 1.0))
    assert condition.shape == (CONTEXT, D)
    assert torch.equal(condition[0], empty[0])  # BOS
    assert torch.allclose(condition[1:6], torch.full((5, D), 2.0 / 3))
    assert torch.allclose(condition[6:13], torch.full((7, D), 3.0))
    assert torch.equal(condition[13:], empty[13:])


def test_a_zero_weight_leaves_its_part_out(empty: torch.Tensor) -> None:
    only_target = fit_condition(empty, rows(5, 2.0), rows(7, 3.0), (0.0, 1.0))
    assert torch.allclose(only_target[1:8], torch.full((7, D), 3.0))
    assert torch.equal(only_target[8:], empty[8:])
    only_preference = fit_condition(empty, rows(5, 2.0), rows(7, 3.0), (1.0, 0.0))
    assert torch.allclose(only_preference[1:6], torch.full((5, D), 2.0))
    assert torch.equal(only_preference[6:], empty[6:])


def test_too_long_preference_is_cut_and_the_target_keeps_its_rows(empty: torch.Tensor) -> None:
    short_preference = fit_condition(empty, rows(40, 2.0), rows(30, 3.0), (1.0, 1.0))
    assert int((short_preference[:, 0] == 2.0).sum()) == 40  # both fit: nothing is cut
    assert int((short_preference[:, 0] == 3.0).sum()) == 30
    long_preference = fit_condition(empty, rows(70, 2.0), rows(30, 3.0), (1.0, 1.0))
    assert long_preference.shape == (CONTEXT, D)
    assert int((long_preference[:, 0] == 3.0).sum()) == MIN_TARGET_ROWS
    kept = CONTEXT - 1 - MIN_TARGET_ROWS
    assert torch.allclose(long_preference[1 : 1 + kept], torch.full((kept, D), 2.0))
    long_target = fit_condition(empty, rows(10, 2.0), rows(90, 3.0), (1.0, 1.0))
    assert int((long_target[:, 0] == 2.0).sum()) == 10
    assert int((long_target[:, 0] == 3.0).sum()) == CONTEXT - 1 - 10


def test_soft_embeddings_come_before_the_keyword_rows() -> None:
    keywords = EncodedPrompt(torch.cat([rows(1, 9.0), rows(3, 1.0)]))  # BOS, then 3 keyword rows
    e_p = preference_rows(keywords, rows(4, 5.0))
    assert e_p.shape == (7, D)
    assert torch.equal(e_p[:4], rows(4, 5.0)) and torch.equal(e_p[4:], rows(3, 1.0))
    assert torch.equal(preference_rows(keywords, None), rows(3, 1.0))
