"""How well a predicted Jaccard picks out the masks to check: AUROC for the failures (J below the ISIC cut), mean
absolute error, the failures among the flagged masks, each with a seeded bootstrap 95% interval; and a paired
comparison of two predictors on the same images."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .metrics import THRESHOLDED_JACCARD_CUTOFF

BOOTSTRAP_RESAMPLES = 1000
LEAST_CONFIDENT_SHARE = 0.10


def auroc_of_failures(predicted: np.ndarray, jaccard: np.ndarray, cut: float = THRESHOLDED_JACCARD_CUTOFF) -> float:
    """The probability that a failure (J < cut) is predicted lower than a success (ties count half): the AUROC of
    the prediction, low meaning failure. NaN where the images hold no failure or no success."""
    failed = jaccard < cut
    if failed.all() or not failed.any():
        return float("nan")
    order = np.argsort(predicted, kind="mergesort")
    ranks = np.empty(len(predicted), dtype=np.float64)
    sorted_values = predicted[order]
    start = 0
    while start < len(order):  # average ranks over ties
        end = start
        while end + 1 < len(order) and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2.0 + 1.0
        start = end + 1
    successes, failures = int((~failed).sum()), int(failed.sum())
    return float((ranks[~failed].sum() - successes * (successes + 1) / 2.0) / (successes * failures))


def least_confident_failures(predicted: np.ndarray, jaccard: np.ndarray, share: float = LEAST_CONFIDENT_SHARE,
                             cut: float = THRESHOLDED_JACCARD_CUTOFF) -> tuple[int, int]:
    """(failures among the `share` least confident masks, all failures)."""
    count = max(1, int(round(share * len(predicted))))
    chosen = np.argsort(predicted, kind="stable")[:count]
    failed = jaccard < cut
    return int(failed[chosen].sum()), int(failed.sum())


def _interval(statistic: Callable[[np.ndarray], float], size: int, seed: int) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    values = [statistic(rng.integers(0, size, size)) for _ in range(BOOTSTRAP_RESAMPLES)]
    finite = np.array([v for v in values if np.isfinite(v)])
    if not len(finite):
        return float("nan"), float("nan")
    low, high = np.percentile(finite, [2.5, 97.5])
    return float(low), float(high)


def quality_report(predicted: Sequence[float], jaccard: Sequence[float], review_below: float,
                   seed: int = 0) -> dict[str, Any]:
    """The figures of the module docstring for one predictor on one set of images."""
    p, j = np.asarray(predicted, dtype=np.float64), np.asarray(jaccard, dtype=np.float64)
    failed = j < THRESHOLDED_JACCARD_CUTOFF
    flagged = p < review_below
    caught, failures = least_confident_failures(p, j)
    return {
        "images": len(p), "failures": int(failed.sum()),
        "auroc": auroc_of_failures(p, j), "auroc_ci95": _interval(lambda i: auroc_of_failures(p[i], j[i]), len(p), seed),
        "mae": float(np.abs(p - j).mean()), "mae_ci95": _interval(lambda i: float(np.abs(p[i] - j[i]).mean()), len(p), seed),
        "review_below": review_below, "flagged": int(flagged.sum()), "flagged_failures": int((flagged & failed).sum()),
        "least_confident_share": LEAST_CONFIDENT_SHARE, "least_confident_failures": caught,
        "least_confident_failure_share": caught / failures if failures else float("nan"),
    }


def paired_auroc_difference(first: Sequence[float], second: Sequence[float], jaccard: Sequence[float],
                            seed: int = 0) -> dict[str, Any]:
    """AUROC(first) - AUROC(second) on the same images, with its paired bootstrap 95% interval."""
    a, b, j = (np.asarray(v, dtype=np.float64) for v in (first, second, jaccard))
    difference = auroc_of_failures(a, j) - auroc_of_failures(b, j)
    interval = _interval(lambda i: auroc_of_failures(a[i], j[i]) - auroc_of_failures(b[i], j[i]), len(j), seed)
    return {"difference": difference, "ci95": interval}
