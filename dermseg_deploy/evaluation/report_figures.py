"""The evaluation report's figure: a histogram of per-image Jaccard with the ISIC threshold marked.

matplotlib is imported only here, when a report is written (`pip install 'dermseg[plot]'`); where it is missing,
`histogram_png` says why and the report is written without the figure.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from ..util.extras import PLOT_EXTRA, extra_hint
from .metrics import THRESHOLDED_JACCARD_CUTOFF


def histogram_png(jaccards: Sequence[float], title: str) -> tuple[bytes | None, str | None]:
    """(PNG bytes, None), or (None, why there is no figure) where matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display, no window
        from matplotlib import pyplot as plt
    except ImportError:
        return None, f"matplotlib is not installed; add the figures with {extra_hint(PLOT_EXTRA)}"
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
