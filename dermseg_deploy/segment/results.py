"""What segmenting one input gives: status, mask (or where it was written), lesion fraction, time, error."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.quality import MaskQuality
from ..core.work_item import WorkItem
from ..errors import INTERNAL_KIND
from ..files.manifest import STATUS_FAILED, STATUS_OK, ManifestRow


@dataclass(frozen=True, eq=False)
class SegmentResult:
    """The outcome for one input; a bad input is a `failed` result, never an exception.

    `mask` is the (H, W) uint8 0/255 array when it was asked for; `mask_path` where it was written;
    `error` says why the input failed and `note` anything worth knowing about a segmented one.
    """

    item: WorkItem
    status: str
    seconds: float = 0.0
    lesion_fraction: float | None = None
    mask: np.ndarray | None = None
    error: str | None = None
    note: str | None = None
    stage_seconds: dict[str, float] | None = None
    """Seconds per stage (`core.stages.STAGE_NAMES`) for a segmented input."""
    error_kind: str | None = None
    """For a failed input: `unusable`, `too_large` (over the pixel limit), `nonfinite_logits` (the model's fault),
    `not_written` or `internal` (an exception dermseg did not expect: a bug)."""
    traceback: str | None = None
    """For an `internal` failure: its traceback (`dermseg-run --debug` prints it)."""
    quality: MaskQuality | None = None
    """For a segmented input: the mask's predicted Jaccard, whether it is calibrated, whether to review it."""

    @property
    def predicted_jaccard(self) -> float | None:
        """The mask's predicted Jaccard (`core.quality`; the raw soft Jaccard where the model has no calibration for
        these settings: `quality.calibrated` says which), or None for a failed input."""
        return None if self.quality is None else self.quality.predicted_jaccard

    @property
    def source(self) -> str:
        return str(self.item.source)

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK

    @property
    def internal_error(self) -> bool:
        """Failed on an exception dermseg did not expect (a bug)."""
        return self.error_kind == INTERNAL_KIND

    @property
    def mask_path(self) -> Path | None:
        return None if self.status == STATUS_FAILED else self.item.mask_path

    @property
    def message(self) -> str | None:
        """`<file>: <reason>` for a failed input, exactly as `dermseg-run` prints it after `error: `."""
        return None if self.error is None else f"{self.source}: {self.error}"

    def manifest_row(self) -> ManifestRow:
        return ManifestRow(
            self.source, self.status, "" if self.mask_path is None else str(self.mask_path), self.lesion_fraction,
            self.seconds, self.error or "", self.note or "", self.error_kind or "",
            None if self.quality is None else self.quality.predicted_jaccard,
            "" if self.quality is None else ("yes" if self.quality.review else "no"),
        )
