"""z = α·log d_p + (1−α)·log d_t, the rule for non-positive cosines, and picking the best allowed."""

from __future__ import annotations

import math

import pytest

from pmg_engine.selection import COSINE_FLOOR, best_index, check_alpha, z_score


def test_z_follows_the_paper() -> None:
    assert z_score(0.5, 0.25, 0.5) == pytest.approx(0.5 * math.log(0.5) + 0.5 * math.log(0.25))
    assert z_score(0.5, 0.25, 1.0) == pytest.approx(math.log(0.5))
    assert z_score(0.5, 0.25, 0.0) == pytest.approx(math.log(0.25))


@pytest.mark.parametrize("cosine", [0.0, -0.3, -1.0, COSINE_FLOOR / 2])
def test_non_positive_cosines_are_clamped_to_the_floor(cosine: float) -> None:
    assert z_score(cosine, 0.5, 0.5) == pytest.approx(0.5 * math.log(COSINE_FLOOR) + 0.5 * math.log(0.5))


def test_the_floor_still_lets_the_other_term_decide() -> None:
    assert z_score(-0.2, 0.9, 0.5) > z_score(-0.2, 0.3, 0.5)


@pytest.mark.parametrize("alpha", [-0.1, 1.5, 1e9, float("nan")])
def test_alpha_outside_zero_one_is_a_clear_error(alpha: float) -> None:
    with pytest.raises(ValueError, match="alpha must be between 0 and 1"):
        check_alpha(alpha)


def test_best_index_skips_flagged_candidates_and_breaks_ties_by_order() -> None:
    assert best_index([0.1, 0.9, 0.5], [True, True, True]) == 1
    assert best_index([0.1, 0.9, 0.5], [True, False, True]) == 2
    assert best_index([0.7, 0.7], [True, True]) == 0
    assert best_index([0.7, 0.7], [False, False]) is None
