"""ISIC-exact evaluation of a model or of a folder of written masks, with the large-lesion subset apart."""

from __future__ import annotations

import csv
import functools
import io
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..core.image_formats import read_gray
from ..core.quality import MaskQuality
from ..defaults import DEFAULT_MAX_PIXELS, DEFAULT_REVIEW_BELOW
from ..errors import InputImageError, UserError, internal_reason
from ..files.inputs import MASK_SUFFIX
from ..files.manifest import MANIFEST_NAME, ManifestRow, read_manifest
from ..segment.segmenter import Segmenter
from ..util.atomic import atomic_write_bytes
from ..util.printable import csv_bytes
from .boundary import BOUNDARY_NAMES, BOUNDARY_TOLERANCE, BoundaryScore, boundary_score
from .metrics import SCORE_NAMES, ImageScore, ScoreTotals, score_image
from .pairs import Pair, read_mask
from .quality_metrics import paired_auroc_difference, quality_report

LARGE_LESION_FRACTION = 0.7
"""Masks covering more than this share of the image: the paper's failure case, reported apart."""


@dataclass(frozen=True)
class ImageEvaluation:
    image_id: str
    truth_fraction: float
    score: ImageScore | None
    error: str | None = None
    manifest_row: ManifestRow | None = None
    """How the segmentation itself went (for `--save-masks`' manifest)."""
    boundary: BoundaryScore | None = None
    """The contour distance and boundary F1 (`boundary`), where they were asked for and the image was scored."""
    internal: bool = False
    """Failed on an exception dermseg did not expect (a bug): `dermseg-eval` exits 70 after scoring the rest."""
    traceback: str | None = None
    """That exception's traceback (`--debug` prints it)."""
    quality: MaskQuality | None = None
    """The mask's predicted Jaccard (`core.quality`), where the model gave one (or a manifest recorded one)."""

    @property
    def large_lesion(self) -> bool:
        return self.truth_fraction > LARGE_LESION_FRACTION


PredictionCallback = Callable[[Pair, np.ndarray], None]
"""Called with each pair and its predicted mask as it is scored (the report keeps small copies)."""


def evaluate_segmenter(
    segmenter: Segmenter, pairs: Sequence[Pair], batch_size: int = 8, save_dir: Path | None = None,
    on_prediction: PredictionCallback | None = None, boundary: bool = False,
) -> list[ImageEvaluation]:
    """Segment each image as `dermseg-run` does (the same core: decode, preprocess, infer, upsample to the
    displayed size) and score it; an image that cannot be segmented counts 0 and is listed. With `save_dir`,
    the scored masks are also written there, named as `dermseg-run` names them."""
    results = segmenter.iter_segment_files([p.image for p in pairs], save_dir, overwrite=True, keep_masks=True,
                                           batch_size=batch_size)
    evaluations = []
    for pair, result in zip(pairs, results):
        evaluation, mask = _scored(pair, result.mask, None, boundary, result.manifest_row(),
                                   result.message or "was not segmented", result.internal_error, result.traceback)
        evaluations.append(replace(evaluation, quality=result.quality) if evaluation.score is not None else evaluation)
        if on_prediction is not None and mask is not None:
            on_prediction(pair, mask)
    return evaluations


def _scored(pair: Pair, mask: np.ndarray | None, read: Callable[[], np.ndarray] | None, boundary: bool,
            row: ManifestRow | None = None, error: str | None = None, internal: bool = False,
            trace: str | None = None) -> tuple[ImageEvaluation, np.ndarray | None]:
    """One pair's evaluation and the prediction it scored (`mask`, else what `read` gives), whatever goes wrong: a
    ground truth that cannot be read, a prediction that is missing (`error` says why) or unreadable, or an exception
    dermseg did not expect (`internal`) is this pair's failure (counted 0), never the evaluation's end."""
    try:
        truth = read_mask(pair.mask)
    except InputImageError as exc:
        return ImageEvaluation(pair.image_id, 0.0, None, f"{pair.mask}: {exc.reason}", row), None
    except Exception as exc:
        failed = ImageEvaluation(pair.image_id, 0.0, None, f"{pair.mask}: {internal_reason(exc)}", row, internal=True,
                                 traceback=_trace(exc))
        return failed, None
    fraction = float(truth.mean())
    if mask is None and read is None:
        return ImageEvaluation(pair.image_id, fraction, None, error, row, internal=internal, traceback=trace), None
    try:
        prediction = read() if mask is None and read is not None else mask
        assert prediction is not None
        return _evaluation(pair, truth, prediction, row, boundary), prediction
    except InputImageError as exc:
        return ImageEvaluation(pair.image_id, fraction, None, exc.reason, row), None
    except Exception as exc:
        return ImageEvaluation(pair.image_id, fraction, None, internal_reason(exc), row, internal=True,
                               traceback=_trace(exc)), None


def _trace(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))


def _evaluation(pair: Pair, truth: np.ndarray, prediction: np.ndarray, row: ManifestRow | None = None,
                boundary: bool = False) -> ImageEvaluation:
    fraction = float(truth.mean())
    if tuple(prediction.shape) != tuple(truth.shape):
        error = f"prediction is {tuple(prediction.shape)}, the ground truth {tuple(truth.shape)}"
        return ImageEvaluation(pair.image_id, fraction, None, error, row)
    border = boundary_score(prediction, truth) if boundary else None
    return ImageEvaluation(pair.image_id, fraction, score_image(prediction, truth), manifest_row=row, boundary=border)


def read_prediction(path: Path) -> np.ndarray:
    """A written mask PNG -> (H,W) uint8 array of its gray values."""
    if not path.is_file():
        raise InputImageError(path, "prediction is missing")
    return read_gray(str(path), path, "prediction", DEFAULT_MAX_PIXELS)


def evaluate_mask_folder(prediction_dir: Path, pairs: Sequence[Pair], on_prediction: PredictionCallback | None = None,
                         boundary: bool = False) -> list[ImageEvaluation]:
    """Score `<id>_segmentation.png` files found anywhere under `prediction_dir` against the pairs."""
    found = {p.name.lower(): p for p in prediction_dir.rglob(f"*{MASK_SUFFIX}")}
    recorded = recorded_quality(prediction_dir)
    results = []
    for pair in pairs:
        path = found.get(f"{pair.image_id}{MASK_SUFFIX}".lower(), prediction_dir / f"{pair.image_id}{MASK_SUFFIX}")
        evaluation, prediction = _scored(pair, None, functools.partial(read_prediction, path), boundary)
        if evaluation.score is not None and path.name.lower() in recorded:
            evaluation = replace(evaluation, quality=recorded[path.name.lower()])
        results.append(evaluation)
        if on_prediction is not None and prediction is not None:
            on_prediction(pair, prediction)
    return results


def recorded_quality(prediction_dir: Path) -> dict[str, MaskQuality]:
    """The predicted Jaccard of each mask, by its file's name (lower case), from the `manifest.csv` that `dermseg-run`
    wrote beside the masks; empty where there is none, or it predates the column."""
    manifest = prediction_dir / MANIFEST_NAME
    if not manifest.is_file():
        return {}
    try:
        rows = read_manifest(manifest)
    except UserError:
        return {}
    return {Path(row.mask_path).name.lower(): MaskQuality(row.predicted_jaccard, False, row.review == "yes")
            for row in rows if row.mask_path and row.predicted_jaccard is not None}


def totals(evaluations: Sequence[ImageEvaluation]) -> ScoreTotals:
    """Sums over images; an image that failed counts 0 on every score."""
    result = ScoreTotals.empty()
    for evaluation in evaluations:
        if evaluation.score is None:
            result.add_failure()
        else:
            result.add(evaluation.score)
    return result


def summarize(evaluations: Sequence[ImageEvaluation], review_below: float = DEFAULT_REVIEW_BELOW) -> dict[str, Any]:
    """Means over all images and over the large-lesion subset, plus the failed images; with boundary scores, their
    means over the scored images (a failed image has no contour to measure, so it is counted apart, in `failed`)."""
    summary: dict[str, Any] = {
        "all": totals(evaluations).means(),
        "large_lesions": totals([e for e in evaluations if e.large_lesion]).means(),
        "large_lesion_fraction_threshold": LARGE_LESION_FRACTION,
        "failed": {e.image_id: e.error for e in evaluations if e.error is not None},
    }
    borders = [e.boundary for e in evaluations if e.boundary is not None]
    if borders:
        summary["boundary"] = {name: sum(getattr(b, name) for b in borders) / len(borders) for name in BOUNDARY_NAMES}
        summary["boundary"] |= {"images": len(borders), "tolerance_of_diagonal": BOUNDARY_TOLERANCE}
    quality = quality_summary(evaluations, review_below)
    if quality is not None:
        summary["quality"] = quality
    return summary


def quality_summary(evaluations: Sequence[ImageEvaluation], review_below: float) -> dict[str, Any] | None:
    """How well the predicted Jaccard of the scored masks picks out the failures (`quality_metrics`); with the
    signals at hand and a calibration, the same for the raw soft Jaccard and the paired difference. None where no
    mask has a prediction."""
    scored = [(e.score.jaccard, e.quality) for e in evaluations if e.score is not None and e.quality is not None]
    if not scored:
        return None
    jaccard = [value for value, _ in scored]
    predicted = [quality.predicted_jaccard for _, quality in scored]
    summary = quality_report(predicted, jaccard, review_below)
    summary["calibrated"] = all(quality.calibrated for _, quality in scored)
    summary["unscored"] = len(evaluations) - len(scored)
    if summary["calibrated"] and all(quality.signals for _, quality in scored):
        raw = [quality.signals[0] for _, quality in scored]
        summary["raw_soft_jaccard"] = quality_report(raw, jaccard, review_below)
        summary["auroc_minus_raw"] = paired_auroc_difference(predicted, raw, jaccard)
    return summary


def quality_cells(evaluation: ImageEvaluation) -> list[str]:
    """The per-image CSV's predicted_jaccard and review cells (empty without a prediction)."""
    if evaluation.quality is None:
        return ["", ""]
    return [f"{evaluation.quality.predicted_jaccard:.6f}", "yes" if evaluation.quality.review else "no"]


def write_per_image_csv(path: Path, evaluations: Sequence[ImageEvaluation]) -> None:
    """One row per image: id, truth lesion fraction, every score, error."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["image_id", "truth_fraction", *SCORE_NAMES, *BOUNDARY_NAMES, "predicted_jaccard", "review", "error"])
    for e in evaluations:
        values = [getattr(e.score, n) for n in SCORE_NAMES] if e.score else [0.0] * len(SCORE_NAMES)
        border = [f"{getattr(e.boundary, n):.6f}" if e.boundary else "" for n in BOUNDARY_NAMES]
        writer.writerow([e.image_id, f"{e.truth_fraction:.6f}", *(f"{v:.6f}" for v in values), *border,
                         *quality_cells(e), e.error or ""])
    atomic_write_bytes(path, csv_bytes(buffer.getvalue()))
