"""A mask's predicted quality, from the logits it came from, at the network's input size: the signals (on the host,
NumPy; `quality_device` computes the same on the device) and the model file's calibration that maps them to a
predicted Jaccard.

The signals of one image, with p = sigmoid(logits) and m its final mask (thresholded, then post-processed):

    soft_jaccard      sum(p m) / (sum(p) + sum(m) - sum(p m)): how much the probabilities agree with their own
                      mask (1 where both are empty). Alone it is the uncalibrated score.
    centre_distance   distance of the mask's centroid from the image centre, in image sides (0.7071 when empty):
                      dermoscopic images are framed on their lesion
    log_compactness   log(perimeter^2 / (4 pi area)), the perimeter being the mask pixels with a 4-neighbour
                      outside it (3.0 when empty): ragged or scattered masks are the wrong ones more often

A calibration (`model.quality_model.QualityModel`, in the model's metadata) turns them into a predicted Jaccard; it
holds only under the settings it was fitted under (test-time augmentation, post-processing, threshold), and
elsewhere the raw soft Jaccard is given, said to be uncalibrated. The choice of signals and the figures:
benchmarks/results/quality-2026-12-08/.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..defaults import DEFAULT_REVIEW_BELOW
from ..model.metadata import ModelMetadata
from ..model.quality_model import SIGNAL_NAMES, QualityModel
from .mask_options import MaskOptions

__all__ = ["DEFAULT_REVIEW_BELOW", "SIGNAL_NAMES", "MaskQuality", "QualityScorer", "host_signals"]
EMPTY_CENTRE_DISTANCE = math.sqrt(0.5)
EMPTY_LOG_COMPACTNESS = 3.0


@dataclass(frozen=True)
class MaskQuality:
    """One mask's predicted Jaccard, whether it comes from a calibration (else it is the raw soft Jaccard), and
    whether it is below the review threshold."""

    predicted_jaccard: float
    calibrated: bool
    review: bool
    signals: tuple[float, ...] = ()
    """The signals it came from (`SIGNAL_NAMES` order): what a calibration is fitted on."""


@dataclass(frozen=True)
class QualityScorer:
    """Signals -> MaskQuality under one run's settings: the model's calibration where it was fitted under them, the
    raw soft Jaccard (said to be uncalibrated) elsewhere."""

    calibration: QualityModel | None
    review_below: float = DEFAULT_REVIEW_BELOW
    why_uncalibrated: str = ""

    @classmethod
    def for_run(cls, metadata: ModelMetadata, options: MaskOptions,
                review_below: float = DEFAULT_REVIEW_BELOW) -> QualityScorer:
        calibration = metadata.quality
        if calibration is None:
            return cls(None, review_below, "the model carries no calibration")
        fitted = calibration.fitted_on
        postprocess = ",".join(options.postprocess) or "none"
        if not fitted.matches(options.tta, postprocess, metadata.threshold):
            return cls(None, review_below, f"its calibration was fitted with --tta {fitted.tta}, --postprocess "
                                           f"{fitted.postprocess}, threshold {fitted.threshold:g}, not these settings")
        return cls(calibration, review_below)

    def score(self, signals: Sequence[float]) -> MaskQuality:
        value = self.calibration.predict(signals) if self.calibration is not None else float(signals[0])
        return MaskQuality(value, self.calibration is not None, value < self.review_below, tuple(signals))

    def describe(self) -> str:
        """`calibrated on 250 labelled images (...)` or `uncalibrated (why): the raw soft Jaccard of the logits`."""
        if self.calibration is None:
            return f"uncalibrated ({self.why_uncalibrated}): the raw soft Jaccard of the logits"
        fitted = self.calibration.fitted_on
        return f"calibrated on {fitted.images} labelled images" + (f" ({fitted.data})" if fitted.data else "")


def host_signals(logits: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """(N, 1, S, S) logits and their (N, 1, S, S) final 0/1 masks -> (N, 3) float64 signals (`SIGNAL_NAMES`)."""
    count, size = logits.shape[0], logits.shape[-1]
    probability = (1.0 / (1.0 + np.exp(-logits.reshape(count, size, size).astype(np.float32)))).astype(np.float64)
    mask = masks.reshape(count, size, size).astype(bool)
    inside = mask.reshape(count, -1).sum(axis=1).astype(np.float64)
    agreement = (probability * mask).reshape(count, -1).sum(axis=1)
    union = probability.reshape(count, -1).sum(axis=1) + inside - agreement
    soft = np.where(union > 0, agreement / np.where(union > 0, union, 1.0), 1.0)
    centre = (np.arange(size, dtype=np.float64) + 0.5) / size - 0.5
    rows = (mask.sum(axis=2) * centre).sum(axis=1) / np.maximum(inside, 1.0)
    cols = (mask.sum(axis=1) * centre).sum(axis=1) / np.maximum(inside, 1.0)
    distance = np.where(inside > 0, np.hypot(rows, cols), EMPTY_CENTRE_DISTANCE)
    padded = np.pad(mask, ((0, 0), (1, 1), (1, 1)))
    interior = (padded[:, :-2, 1:-1] & padded[:, 2:, 1:-1] & padded[:, 1:-1, :-2] & padded[:, 1:-1, 2:]) & mask
    perimeter = (mask & ~interior).reshape(count, -1).sum(axis=1).astype(np.float64)
    compact = np.where(inside > 0, np.log(np.maximum(perimeter, 1.0) ** 2 / (4 * math.pi * np.maximum(inside, 1.0))),
                       EMPTY_LOG_COMPACTNESS)
    return np.stack([soft, distance, compact], axis=1)
