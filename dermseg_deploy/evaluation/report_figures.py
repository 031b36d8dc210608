"""The evaluation report's figures: a histogram of per-image Jaccard with the ISIC threshold marked, and the
predicted against the real Jaccard of every mask.

matplotlib is imported only here, when a report is written (`pip install 'dermseg[plot]'`); where it is missing,
`histogram_png` says why and the report is written without the figure.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from ..util.extras import PLOT_EXTRA, extra_hint
from .metrics import THRESHOLDED_JACCARD_CUTOFF


def _pyplot() -> tuple[Any, str | None]:
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display, no window
        from matplotlib import pyplot as plt
    except ImportError:
        return None, f"matplotlib is not installed; add the figures with {extra_hint(PLOT_EXTRA)}"
    return plt, None


def histogram_png(jaccards: Sequence[float], title: str) -> tuple[bytes | None, str | None]:
    """(PNG bytes, None), or (None, why there is no figure) where matplotlib is not installed."""
    plt, missing = _pyplot()
    if plt is None:
        return None, missing
    figure, axis = plt.subplots(figsize=(7.0, 3.2), dpi=100)
    try:
        axis.hist(list(jaccards), bins=[i / 40 for i in range(41)], color="#4c72b0", edgecolor="white")
        axis.axvline(THRESHOLDED_JACCARD_CUTOFF, color="#c44e52", linestyle="--",
                     label=f"ISIC threshold {THRESHOLDED_JACCARD_CUTOFF} (below it, thresholded Jaccard is 0)")
        axis.set_xlim(0.0, 1.0)
        axis.set_xlabel("Jaccard index per image")
        axis.set_ylabel("images")
        axis.set_title(title, fontsize=10)
        axis.legend(loc="upper left", fontsize=8)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
    finally:
        plt.close(figure)
    return buffer.getvalue(), None


def quality_scatter_png(predicted: Sequence[float], jaccards: Sequence[float], review_below: float,
                        title: str) -> tuple[bytes | None, str | None]:
    """Predicted against real Jaccard, one point per mask, with the ISIC cut and the review threshold marked."""
    plt, missing = _pyplot()
    if plt is None:
        return None, missing
    figure, axis = plt.subplots(figsize=(5.0, 4.6), dpi=100)
    try:
        failed = [j < THRESHOLDED_JACCARD_CUTOFF for j in jaccards]
        for flag, colour, label in ((False, "#4c72b0", "Jaccard >= 0.65"), (True, "#c44e52", "Jaccard < 0.65")):
            xs = [p for p, f in zip(predicted, failed) if f == flag]
            ys = [j for j, f in zip(jaccards, failed) if f == flag]
            axis.scatter(xs, ys, s=10, color=colour, alpha=0.7, label=f"{label} ({len(xs)})")
        axis.plot([0, 1], [0, 1], color="#888", linewidth=0.8)
        axis.axvline(review_below, color="#dd8452", linestyle="--", label=f"review below {review_below:g}")
        axis.axhline(THRESHOLDED_JACCARD_CUTOFF, color="#c44e52", linestyle=":", linewidth=0.8)
        axis.set_xlim(0.0, 1.0)
        axis.set_ylim(0.0, 1.0)
        axis.set_xlabel("predicted Jaccard")
        axis.set_ylabel("real Jaccard")
        axis.set_title(title, fontsize=10)
        axis.legend(loc="lower right", fontsize=8)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
    finally:
        plt.close(figure)
    return buffer.getvalue(), None
