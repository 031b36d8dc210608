"""How well a predicted lesion border follows the true one, in pixels of the original image.

    contour distance   the mean symmetric distance between the two contours: every contour pixel of each mask is
                       taken to the nearest contour pixel of the other, and the distances are averaged over both
                       contours (in pixels of the image the mask has: its original size)
    boundary F1        precision and recall of contour pixels that lie within a tolerance of the other contour,
                       combined; the tolerance is 0.75% of the image diagonal (Csurka et al., BMVC 2013), about
                       39 px at 4288x2848 and 5.4 px at 512x512, so that sizes compare

A contour is a mask's inner boundary (a lesion pixel with a background 4-neighbour); the image's own edge is not a
border, as in the overlays. When neither mask has a contour (both empty or both full) the distance is 0 and F1 is 1;
when only one has, the distance is the image diagonal and F1 is 0. Masks are binarised as the ISIC scorer does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

BOUNDARY_TOLERANCE = 0.0075
"""Boundary F1's tolerance, as a fraction of the image diagonal."""
BOUNDARY_NAMES = ("contour_distance_px", "boundary_f1")


@dataclass(frozen=True)
class BoundaryScore:
    contour_distance_px: float
    boundary_f1: float


def contour(mask: np.ndarray) -> np.ndarray:
    """Bool (H, W): lesion pixels with a background 4-neighbour (outside the image counts as lesion)."""
    from scipy import ndimage

    return mask & ~ndimage.binary_erosion(mask, border_value=1)


def boundary_score(prediction: np.ndarray, truth: np.ndarray) -> BoundaryScore:
    """The contour distance and boundary F1 of two (H, W) masks of the same size (uint8 binarised at > 128, else bool)."""
    from scipy import ndimage

    if prediction.shape != truth.shape:
        raise ValueError(f"prediction {tuple(prediction.shape)} and truth {tuple(truth.shape)} differ in size")
    p = contour(_binary(prediction))
    t = contour(_binary(truth))
    diagonal = math.hypot(*truth.shape[:2])
    if not p.any() and not t.any():
        return BoundaryScore(0.0, 1.0)
    if not p.any() or not t.any():
        return BoundaryScore(diagonal, 0.0)
    rows, columns = np.nonzero(p | t)  # every contour pixel lies in this box, so distances inside it are exact
    box = (slice(rows.min(), rows.max() + 1), slice(columns.min(), columns.max() + 1))
    p, t = p[box], t[box]
    to_truth = ndimage.distance_transform_edt(~t)[p]
    to_prediction = ndimage.distance_transform_edt(~p)[t]
    distance = float((to_truth.sum() + to_prediction.sum()) / (to_truth.size + to_prediction.size))
    tolerance = BOUNDARY_TOLERANCE * diagonal
    precision = float(np.mean(to_truth <= tolerance))
    recall = float(np.mean(to_prediction <= tolerance))
    f1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return BoundaryScore(distance, f1)


def _binary(mask: np.ndarray) -> np.ndarray:
    return mask > 128 if mask.dtype == np.uint8 else mask.astype(bool)
