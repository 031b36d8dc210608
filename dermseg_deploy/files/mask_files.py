"""Reading back a mask dermseg wrote (for a rerun's manifest: a skipped image whose earlier record was lost)."""

from __future__ import annotations

import numpy as np

from ..core.image_formats import read_gray
from ..defaults import DEFAULT_MAX_PIXELS
from ..errors import InputImageError


def lesion_fraction_of_file(mask_path: str) -> float | None:
    """Share of the pixels marked lesion in a 0/255 mask PNG; None when it cannot be read (or is not an image of the
    decoder's allow-list, or is over the pixel limit)."""
    try:
        pixels = read_gray(mask_path, mask_path, "mask", DEFAULT_MAX_PIXELS)
    except InputImageError:
        return None
    return float(np.count_nonzero(pixels)) / max(1, pixels.size)
