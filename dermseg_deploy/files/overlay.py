"""Overlays: the mask outline drawn over the image (or "no lesion found" where the mask is empty), as JPEG."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFont

OUTLINE_RGB = (0, 255, 0)
NO_LESION_LABEL = "no lesion found"


def mask_outline(mask: np.ndarray, thickness_px: int) -> np.ndarray:
    """(H,W) 0/255 mask -> bool (H,W) band of `thickness_px` pixels along the inside of its boundary (the image's
    own border is not a boundary)."""
    from scipy import ndimage

    inside = mask > 0
    eroded = ndimage.minimum_filter(inside, size=2 * thickness_px + 1, mode="nearest")
    return inside & ~eroded


def render_overlay(image: np.ndarray, mask: np.ndarray, quality: int = 90) -> bytes:
    """(H,W,3) uint8 image and its (H,W) mask -> JPEG bytes with the mask outline drawn over the image."""
    height, width = mask.shape
    thickness = max(1, round(min(height, width) / 300))
    rgb = np.array(image, dtype=np.uint8, copy=True)
    rgb[mask_outline(mask, thickness)] = OUTLINE_RGB
    picture = Image.fromarray(rgb)
    if not mask.any():
        _label(picture, NO_LESION_LABEL)
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _label(picture: Image.Image, text: str) -> None:
    """Write `text` in the top-left corner, white on black, about a twentieth of the image high."""
    size = max(12, min(picture.size) // 20)
    font = ImageFont.load_default(size=size)
    draw = ImageDraw.Draw(picture)
    left, top, right, bottom = draw.textbbox((size // 2, size // 2), text, font=font)
    draw.rectangle((left - size // 4, top - size // 4, right + size // 4, bottom + size // 4), fill=(0, 0, 0))
    draw.text((size // 2, size // 2), text, fill=(255, 255, 255), font=font)
