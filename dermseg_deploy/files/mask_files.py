"""Reading back a mask dermseg wrote (for a rerun's manifest: a skipped image whose earlier record was lost)."""

from __future__ import annotations

import numpy as np
from PIL import Image, UnidentifiedImageError


def lesion_fraction_of_file(mask_path: str) -> float | None:
    """Share of the pixels marked lesion in a 0/255 mask PNG; None when it cannot be read."""
    try:
        with Image.open(mask_path) as image:
            pixels = np.asarray(image.convert("L"))
    except (OSError, UnidentifiedImageError, ValueError):
        return None
    return float(np.count_nonzero(pixels)) / max(1, pixels.size)
