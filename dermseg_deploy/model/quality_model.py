"""The calibration of a mask's predicted Jaccard that a model file may carry (in its metadata, `extra["quality"]`):
a linear score of the signals (`core.quality`), then a monotone map of that score to Jaccard, fitted on labelled
images under stated settings.

    {"signals": ["soft_jaccard", "centre_distance", "log_compactness"], "intercept": b, "weights": [w1, w2, w3],
     "knots": {"score": [increasing], "jaccard": [non-decreasing, in 0-1]},
     "fitted_on": {"images": N, "data": "...", "tta": "none", "postprocess": "none", "threshold": 0.5}}

Everything is checked before it is used (`from_dict`): a hostile file's map that is not monotone, holds NaN, leaves
[0, 1] or is too long is refused with one line, like any other bad metadata.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .schema import (
    refuse,
    require_finite,
    require_int,
    require_keys,
    require_known_keys,
    require_mapping,
    require_str,
)

SIGNAL_NAMES = ("soft_jaccard", "centre_distance", "log_compactness")
"""What `core.quality` computes for every mask, in this order."""
MAX_KNOTS = 64
QUALITY_KEY = "quality"


@dataclass(frozen=True)
class FittedOn:
    """The images a calibration was fitted on, and the settings it holds under."""

    images: int
    data: str
    tta: str
    postprocess: str
    threshold: float

    def matches(self, tta: str, postprocess: str, threshold: float) -> bool:
        return self.tta == tta and self.postprocess == postprocess and abs(self.threshold - threshold) < 1e-9


@dataclass(frozen=True)
class QualityModel:
    """`predict(signals)`: the predicted Jaccard of a mask from its signals (`SIGNAL_NAMES` order)."""

    signals: tuple[str, ...]
    intercept: float
    weights: tuple[float, ...]
    knot_scores: tuple[float, ...]
    knot_jaccards: tuple[float, ...]
    fitted_on: FittedOn

    def score(self, signals: Sequence[float]) -> float:
        """The linear score of the signals this calibration uses."""
        values = dict(zip(SIGNAL_NAMES, signals))
        return self.intercept + sum(w * values[name] for name, w in zip(self.signals, self.weights))

    def predict(self, signals: Sequence[float]) -> float:
        """The monotone map of the score, linear between knots and flat beyond them."""
        score, xs, ys = self.score(signals), self.knot_scores, self.knot_jaccards
        if score <= xs[0]:
            return ys[0]
        if score >= xs[-1]:
            return ys[-1]
        index = next(i for i in range(1, len(xs)) if score <= xs[i])
        share = (score - xs[index - 1]) / (xs[index] - xs[index - 1])
        return ys[index - 1] + share * (ys[index] - ys[index - 1])

    def to_dict(self) -> dict[str, Any]:
        fitted = self.fitted_on
        return {"signals": list(self.signals), "intercept": self.intercept, "weights": list(self.weights),
                "knots": {"score": list(self.knot_scores), "jaccard": list(self.knot_jaccards)},
                "fitted_on": {"images": fitted.images, "data": fitted.data, "tta": fitted.tta,
                              "postprocess": fitted.postprocess, "threshold": fitted.threshold}}

    @classmethod
    def from_dict(cls, data: Any, field: str = "metadata.extra.quality") -> QualityModel:
        data = require_mapping(data, field)
        require_known_keys(data, field, {"signals", "intercept", "weights", "knots", "fitted_on"})
        require_keys(data, field, ("signals", "intercept", "weights", "knots", "fitted_on"))
        signals = _strings(data["signals"], f"{field}.signals")
        unknown = [name for name in signals if name not in SIGNAL_NAMES]
        if not signals or unknown or len(set(signals)) != len(signals):
            raise refuse(f"{field}.signals", data["signals"], f"must be distinct names among {', '.join(SIGNAL_NAMES)}")
        weights = _numbers(data["weights"], f"{field}.weights", len(signals), len(signals))
        knots = require_mapping(data["knots"], f"{field}.knots")
        require_known_keys(knots, f"{field}.knots", {"score", "jaccard"})
        require_keys(knots, f"{field}.knots", ("score", "jaccard"))
        xs = _numbers(knots["score"], f"{field}.knots.score", 2, MAX_KNOTS)
        ys = _numbers(knots["jaccard"], f"{field}.knots.jaccard", len(xs), len(xs))
        if any(b <= a for a, b in zip(xs, xs[1:])):
            raise refuse(f"{field}.knots.score", knots["score"], "must be strictly increasing")
        if any(b < a for a, b in zip(ys, ys[1:])):
            raise refuse(f"{field}.knots.jaccard", knots["jaccard"], "must not decrease (a monotone map)")
        if any(not 0.0 <= y <= 1.0 for y in ys):
            raise refuse(f"{field}.knots.jaccard", knots["jaccard"], "every value must lie in [0, 1] (a Jaccard)")
        return cls(signals, require_finite(data["intercept"], f"{field}.intercept"), weights, xs, ys,
                   _fitted_on(data["fitted_on"], f"{field}.fitted_on"))


def _strings(value: Any, field: str) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) > len(SIGNAL_NAMES):
        raise refuse(field, value, f"must be a list of at most {len(SIGNAL_NAMES)} names")
    return tuple(require_str(item, f"{field}[{index}]", 64) for index, item in enumerate(value))


def _numbers(value: Any, field: str, least: int, most: int) -> tuple[float, ...]:
    if not isinstance(value, list) or not least <= len(value) <= most:
        raise refuse(field, value, f"must be a list of {least} to {most} numbers")
    return tuple(require_finite(item, f"{field}[{index}]") for index, item in enumerate(value))


def _fitted_on(value: Any, field: str) -> FittedOn:
    data: Mapping[str, Any] = require_mapping(value, field)
    require_known_keys(data, field, {"images", "data", "tta", "postprocess", "threshold"})
    require_keys(data, field, ("images", "tta", "postprocess", "threshold"))
    threshold = require_finite(data["threshold"], f"{field}.threshold")
    if not 0.0 < threshold < 1.0 or math.isnan(threshold):
        raise refuse(f"{field}.threshold", threshold, "must lie strictly between 0 and 1")
    return FittedOn(require_int(data["images"], f"{field}.images", 1, 10**9),
                    require_str(data.get("data", ""), f"{field}.data", 512), require_str(data["tta"], f"{field}.tta", 32),
                    require_str(data["postprocess"], f"{field}.postprocess", 64), threshold)
