"""Trivial predictions to compare a model with: all lesion, all background, a centred ellipse."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dermseg_deploy.evaluation.metrics import score_image
from dermseg_deploy.evaluation.pairs import Pair, read_mask
from dermseg_deploy.evaluation.scoring import ImageEvaluation, summarize
from dermseg_deploy.model.checkpoint import load_checkpoint, save_checkpoint

ELLIPSE_SEMI_AXES = 0.35
"""The centred ellipse's semi-axes as fractions of the image's width and height."""


def centred_ellipse(height: int, width: int, semi_axes: float = ELLIPSE_SEMI_AXES) -> np.ndarray:
    """A bool (H,W) ellipse centred in the image with semi-axes `semi_axes` x W and x H."""
    y = (np.arange(height, dtype=np.float32) + 0.5 - height / 2) / (semi_axes * height)
    x = (np.arange(width, dtype=np.float32) + 0.5 - width / 2) / (semi_axes * width)
    return (y[:, None] ** 2 + x[None, :] ** 2) <= 1.0


BASELINES: dict[str, Callable[[int, int], np.ndarray]] = {
    "all_lesion": lambda h, w: np.ones((h, w), dtype=bool),
    "all_background": lambda h, w: np.zeros((h, w), dtype=bool),
    "centred_ellipse": centred_ellipse,
}


def baseline_summaries(pairs: Sequence[Pair]) -> dict[str, dict[str, object]]:
    """The evaluation summary of every baseline on the same images."""
    evaluations: dict[str, list[ImageEvaluation]] = {name: [] for name in BASELINES}
    for pair in pairs:
        truth = read_mask(pair.mask)
        fraction = float(truth.mean())
        for name, predict in BASELINES.items():
            score = score_image(predict(*truth.shape), truth)
            evaluations[name].append(ImageEvaluation(pair.image_id, fraction, score))
    return {name: summarize(items) for name, items in evaluations.items()}


def add_baselines(out: Path, val_pairs: Sequence[Pair]) -> dict[str, Any]:
    """Score the trivial baselines on the validation images and store them in the best checkpoint's metrics;
    returns those metrics (the best epoch's record and validation, and the baselines)."""
    baselines = baseline_summaries(val_pairs)
    checkpoint = load_checkpoint(out)
    checkpoint.metrics["baselines"] = baselines
    save_checkpoint(checkpoint, out)
    return checkpoint.metrics
