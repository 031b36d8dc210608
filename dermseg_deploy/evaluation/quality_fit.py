"""Fitting the calibration of the predicted Jaccard on labelled images: least squares of the real Jaccard on the
signals (the linear score), then the monotone map of that score to Jaccard (isotonic regression, pool adjacent
violators), kept as at most `MAX_KNOTS` knots."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import UserError
from ..model.quality_model import MAX_KNOTS, SIGNAL_NAMES, FittedOn, QualityModel

MIN_IMAGES = 20
"""Fewer labelled images than this fit nothing worth carrying."""


def isotonic(values: np.ndarray) -> np.ndarray:
    """The non-decreasing sequence nearest `values` in least squares (pool adjacent violators, equal weights)."""
    means: list[float] = []
    counts: list[int] = []
    for value in values.astype(np.float64):
        means.append(float(value))
        counts.append(1)
        while len(means) > 1 and means[-2] > means[-1]:
            total = means[-2] * counts[-2] + means[-1] * counts[-1]
            counts[-2] += counts[-1]
            means[-2] = total / counts[-2]
            means.pop()
            counts.pop()
    return np.repeat(np.array(means), counts)


def fit_quality_model(signals: np.ndarray, jaccards: Sequence[float], fitted_on: FittedOn,
                      names: Sequence[str] = SIGNAL_NAMES) -> QualityModel:
    """The calibration of `names` (columns of `signals`, in `SIGNAL_NAMES` order) to the real `jaccards`."""
    y = np.asarray(jaccards, dtype=np.float64)
    if len(y) < MIN_IMAGES:
        raise UserError(f"a calibration needs at least {MIN_IMAGES} labelled images, got {len(y)}")
    columns = [SIGNAL_NAMES.index(name) for name in names]
    x = np.asarray(signals, dtype=np.float64)[:, columns]
    design = np.c_[np.ones(len(y)), x]
    coefficients, *_ = np.linalg.lstsq(design, y, rcond=None)
    scores = design @ coefficients
    order = np.argsort(scores, kind="stable")
    sorted_scores, fitted = scores[order], np.clip(isotonic(y[order]), 0.0, 1.0)
    knots: dict[float, float] = {}
    for index in range(len(fitted)):  # each block's first and last score, so that the map is flat within it
        first = index == 0 or fitted[index] != fitted[index - 1]
        last = index == len(fitted) - 1 or fitted[index] != fitted[index + 1]
        if first or last:
            knots[float(sorted_scores[index])] = float(fitted[index])
    xs, ys = zip(*sorted(knots.items()))
    if len(xs) > MAX_KNOTS:
        keep = np.unique(np.round(np.linspace(0, len(xs) - 1, MAX_KNOTS)).astype(int))
        xs, ys = tuple(xs[i] for i in keep), tuple(ys[i] for i in keep)
    if len(xs) < 2:  # every score equal, or every Jaccard: a flat map
        xs, ys = (xs[0] - 1.0, xs[0] + 1.0), (ys[0], ys[0])
    return QualityModel(tuple(names), float(coefficients[0]), tuple(float(c) for c in coefficients[1:]),
                        tuple(xs), tuple(ys), fitted_on)
