"""ISIC image/mask pairs: discovery under the official folder names (or images/ + masks/), and ground-truth masks."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.decode import IMAGE_SUFFIXES
from ..core.image_formats import read_gray
from ..defaults import DEFAULT_MAX_PIXELS
from ..errors import UserError

IMAGE_FOLDERS = ("ISIC2018_Task1-2_Training_Input", "ISIC-2017_Validation_Data", "images")
MASK_FOLDERS = ("ISIC2018_Task1_Training_GroundTruth", "ISIC-2017_Validation_Part1_GroundTruth", "masks")
MASK_SUFFIX = re.compile(r"^(?P<id>.+)_segmentation$", re.IGNORECASE)


@dataclass(frozen=True)
class Pair:
    """One image and its ground-truth mask, keyed by ISIC id (the image's stem)."""

    image_id: str
    image: Path
    mask: Path


def _find_folder(root: Path, names: tuple[str, ...], kind: str) -> Path:
    for name in names:
        for candidate in (root / name, *root.glob(f"*/{name}")):
            if candidate.is_dir():
                return candidate
    raise UserError(f"{root}: no {kind} folder found (looked for {', '.join(names)})")


def discover_pairs(root: str | Path) -> list[Pair]:
    """Pair `ISIC_x.jpg` with `ISIC_x_segmentation.png` (suffix case-insensitive) under the ISIC or images/masks layout.

    Raises UserError listing images without masks and masks without images.
    """
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root}: data folder not found")
    image_dir = _find_folder(root, IMAGE_FOLDERS, "image")
    mask_dir = _find_folder(root, MASK_FOLDERS, "mask")
    images = {p.stem: p for p in image_dir.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES}
    masks = {}
    for p in mask_dir.iterdir():
        match = MASK_SUFFIX.match(p.stem)
        if p.is_file() and p.suffix.lower() == ".png" and match:
            masks[match["id"]] = p
    lonely_images = sorted(set(images) - set(masks))
    lonely_masks = sorted(set(masks) - set(images))
    if lonely_images or lonely_masks:
        parts = []
        if lonely_images:
            parts.append(f"{len(lonely_images)} images without masks: {', '.join(lonely_images[:10])}")
        if lonely_masks:
            parts.append(f"{len(lonely_masks)} masks without images: {', '.join(lonely_masks[:10])}")
        raise UserError(f"{root}: unpaired files: {'; '.join(parts)}")
    if not images:
        raise UserError(f"{root}: no image/mask pairs found in {image_dir} and {mask_dir}")
    return [Pair(i, images[i], masks[i]) for i in sorted(images)]


def read_mask(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """A ground-truth PNG -> (H,W) bool array, binarised at > 128 as the ISIC scorer does; the decoder allow-list and
    the pixel limit as for images (InputImageError, ImageTooLargeError)."""
    return read_gray(str(path), path, "mask", max_pixels) > 128
