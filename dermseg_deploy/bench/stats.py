"""Latency summaries with nearest-rank percentiles, as trtexec reports them."""

from __future__ import annotations

import math
from collections.abc import Sequence

PERCENTILES = (90, 95, 99)


def nearest_rank(values: Sequence[float], percentile: float) -> float:
    """The smallest value with at least `percentile`% of the values at or below it."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(percentile / 100.0 * len(ordered)))
    return ordered[rank - 1]


def summarize_ms(values: Sequence[float]) -> dict[str, float]:
    """mean, median, p90, p95, p99 (nearest rank), min, max and the count of a list of milliseconds."""
    if not values:
        return {"count": 0}
    summary = {
        "count": float(len(values)),
        "mean": sum(values) / len(values),
        "median": nearest_rank(values, 50),
        "min": min(values),
        "max": max(values),
    }
    for p in PERCENTILES:
        summary[f"p{p}"] = nearest_rank(values, p)
    return summary
