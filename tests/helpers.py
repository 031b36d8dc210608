"""Small helpers shared by the tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps


def read_png(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.mode == "L", f"{path} is {image.mode}, not single-channel 8-bit"
        return np.asarray(image)


def displayed_size(path: Path) -> tuple[int, int]:
    """(height, width) of an image as a viewer shows it (EXIF orientation applied)."""
    with Image.open(path) as image:
        width, height = ImageOps.exif_transpose(image).size
    return height, width


def iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0, b > 0
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)
