"""One input of the per-image core, and where its outputs go."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True, eq=False)
class WorkItem:
    """One input image and where its mask (and overlay) go (None: the mask is returned, not written).

    `source` is the file, or a label such as `<image 0>` for an image given in memory: as the encoded file's
    `data` (decoded as a file would be), or as `pixels` ((H, W, 3) uint8, as a viewer shows it).
    """

    source: Path | str
    mask_path: Path | None = None
    overlay_path: Path | None = None
    pixels: np.ndarray | None = None
    data: bytes | None = None

    @property
    def path(self) -> Path:
        return Path(self.source)
