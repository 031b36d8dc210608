"""The border measures of dermseg-eval: contour distance and boundary F1 on masks whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dermseg_deploy.evaluation.boundary import BoundaryScore, boundary_score, contour


def _pair(score: BoundaryScore) -> tuple[float, float]:
    return score.contour_distance_px, score.boundary_f1


def _square(size: int, top: int, bottom: int) -> np.ndarray:
    mask = np.zeros((size, size), dtype=np.uint8)
    mask[top:bottom, top:bottom] = 255
    return mask


def test_the_same_mask_scores_zero_distance_and_f1_one() -> None:
    mask = _square(300, 50, 150)
    assert _pair(boundary_score(mask, mask.copy())) == pytest.approx((0.0, 1.0))


def test_a_border_five_pixels_inside_is_five_pixels_away() -> None:
    truth, prediction = _square(1000, 50, 150), _square(1000, 55, 145)
    score = boundary_score(prediction, truth)
    assert 5.0 <= score.contour_distance_px <= 5.5  # 5 along the sides, up to 5 * sqrt(2) at the corners
    assert score.boundary_f1 == 1.0  # tolerance 0.75% of the diagonal: 10.6 px here
    small_image = boundary_score(_square(200, 50, 150), _square(200, 55, 145))
    assert small_image.boundary_f1 == 0.0  # tolerance 2.1 px at 200x200: no contour pixel is that close


def test_empty_and_full_masks_follow_the_stated_rules() -> None:
    empty, full = np.zeros((30, 40), np.uint8), np.full((30, 40), 255, np.uint8)
    assert _pair(boundary_score(empty, empty)) == pytest.approx((0.0, 1.0))
    assert _pair(boundary_score(full, full)) == pytest.approx((0.0, 1.0))  # the image's edge is not a border
    assert _pair(boundary_score(empty, _square(40, 5, 20)[:30])) == pytest.approx((math.hypot(30, 40), 0.0))


def test_the_image_edge_is_not_a_contour() -> None:
    half = np.zeros((20, 20), dtype=bool)
    half[:, :10] = True
    edge = contour(half)
    assert edge[:, 9].all() and not edge[:, :9].any() and not edge[:, 10:].any()
