"""ISIC 2018 Task 1 scoring, per image, reduced from raw counts."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

THRESHOLDED_JACCARD_CUTOFF = 0.65


@dataclass(frozen=True)
class ImageScore:
    """Confusion counts of one image and the scores derived from them."""

    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def jaccard(self) -> float:
        union = self.tp + self.fp + self.fn
        return 1.0 if union == 0 else self.tp / union

    @property
    def thresholded_jaccard(self) -> float:
        j = self.jaccard
        return j if j >= THRESHOLDED_JACCARD_CUTOFF else 0.0

    @property
    def dice(self) -> float:
        denom = 2 * self.tp + self.fp + self.fn
        return 1.0 if denom == 0 else 2 * self.tp / denom

    @property
    def sensitivity(self) -> float:
        positives = self.tp + self.fn
        return 1.0 if positives == 0 else self.tp / positives

    @property
    def specificity(self) -> float:
        negatives = self.tn + self.fp
        return 1.0 if negatives == 0 else self.tn / negatives

    def to_dict(self) -> dict[str, float]:
        return {
            **asdict(self),
            "jaccard": self.jaccard,
            "thresholded_jaccard": self.thresholded_jaccard,
            "dice": self.dice,
            "sensitivity": self.sensitivity,
            "specificity": self.specificity,
        }


def _binary(mask: np.ndarray) -> np.ndarray:
    """A uint8 0-255 mask binarised at > 128, as the ISIC scorer does; anything else read as bool."""
    return mask > 128 if mask.dtype == np.uint8 else mask.astype(bool)


def score_image(prediction: np.ndarray, truth: np.ndarray) -> ImageScore:
    """Score a predicted mask against the truth; both (H,W), binarised at > 128 if uint8 0-255, else as bool."""
    if prediction.shape != truth.shape:
        raise ValueError(f"prediction {tuple(prediction.shape)} and truth {tuple(truth.shape)} differ in size")
    p, t = _binary(prediction), _binary(truth)
    tp = int(np.count_nonzero(p & t))
    fp = int(np.count_nonzero(p & ~t))
    fn = int(np.count_nonzero(~p & t))
    return ImageScore(tp, fp, fn, p.size - tp - fp - fn)


SCORE_NAMES = ("jaccard", "thresholded_jaccard", "dice", "sensitivity", "specificity")


@dataclass
class ScoreTotals:
    """Sums of the per-image scores and the image count: what processes add up before taking means."""

    sums: dict[str, float]
    images: int = 0

    @classmethod
    def empty(cls) -> ScoreTotals:
        return cls({name: 0.0 for name in SCORE_NAMES}, 0)

    def add(self, score: ImageScore) -> None:
        for name in SCORE_NAMES:
            self.sums[name] += getattr(score, name)
        self.images += 1

    def add_failure(self) -> None:
        """An image whose prediction is missing or unusable counts 0 on every score."""
        self.images += 1

    def means(self) -> dict[str, float | None]:
        """Means per score (None where there is no image, so that JSON stays standard) and the count."""
        means: dict[str, float | None] = {name: None for name in SCORE_NAMES}
        if self.images:
            means = {name: self.sums[name] / self.images for name in SCORE_NAMES}
        means["images"] = self.images
        return means

    def to_list(self) -> list[float]:
        """The sums in `SCORE_NAMES` order, then the image count: what processes add up element-wise."""
        return [*(self.sums[name] for name in SCORE_NAMES), float(self.images)]

    @classmethod
    def from_list(cls, values: list[float]) -> ScoreTotals:
        return cls(dict(zip(SCORE_NAMES, values[:-1])), int(round(values[-1])))
