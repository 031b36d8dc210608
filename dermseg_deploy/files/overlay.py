"""The pictures dermseg draws, in one module: mask outlines over an image (`dermseg-run --overlay`, the serve page's
result) and the evaluation report's comparison strips (image | ground truth | both outlines over the image).

Colours are the same everywhere: the prediction's outline green, the ground truth's magenta (a pair that stays
distinct for the common colour-vision deficiencies); an empty prediction is labelled "no lesion found".
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

PREDICTION_RGB = (0, 255, 0)
TRUTH_RGB = (255, 0, 255)
OUTLINE_RGB = PREDICTION_RGB
NO_LESION_LABEL = "no lesion found"


def mask_outline(mask: np.ndarray, thickness_px: int) -> np.ndarray:
    """(H,W) 0/255 mask -> bool (H,W) band of `thickness_px` pixels along the inside of its boundary (the image's
    own border is not a boundary)."""
    from scipy import ndimage

    inside = mask > 0
    eroded = ndimage.minimum_filter(inside, size=2 * thickness_px + 1, mode="nearest")
    return inside & ~eroded


def outline_thickness(height: int, width: int) -> int:
    """An outline about a three-hundredth of the shorter side, at least one pixel."""
    return max(1, round(min(height, width) / 300))


def draw_outlines(image: np.ndarray, outlines: Sequence[tuple[np.ndarray, tuple[int, int, int]]],
                  thickness_px: int | None = None) -> np.ndarray:
    """A copy of the (H,W,3) uint8 image with each (mask, colour) outline drawn over it, in order (the last on top)."""
    height, width = image.shape[:2]
    thickness = thickness_px or outline_thickness(height, width)
    rgb = np.array(image, dtype=np.uint8, copy=True)
    for mask, colour in outlines:
        rgb[mask_outline(mask, thickness)] = colour
    return rgb


def encode_jpeg(pixels: np.ndarray | Image.Image, quality: int = 90) -> bytes:
    picture = pixels if isinstance(pixels, Image.Image) else Image.fromarray(pixels)
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


REVIEW_RGB = (255, 140, 0)
"""The frame of an overlay whose mask is flagged for review (orange: apart from both outline colours)."""


def render_overlay(image: np.ndarray, mask: np.ndarray, quality: int = 90, review: str | None = None) -> bytes:
    """(H,W,3) uint8 image and its (H,W) mask -> JPEG bytes with the mask outline drawn over it; with `review` (the
    line to show), an orange frame and that line, for a mask flagged for review."""
    picture = Image.fromarray(draw_outlines(image, [(mask, PREDICTION_RGB)]))
    labels = ([NO_LESION_LABEL] if not mask.any() else []) + ([review] if review else [])
    if review:
        width = max(3, min(picture.size) // 80)
        ImageDraw.Draw(picture).rectangle((0, 0, picture.size[0] - 1, picture.size[1] - 1), outline=REVIEW_RGB,
                                          width=width)
    if labels:
        _label(picture, "; ".join(labels))
    return encode_jpeg(picture, quality)


def fit_size(height: int, width: int, longest_px: int) -> tuple[int, int]:
    """(height, width) scaled so that the longer side is at most `longest_px` (never enlarged)."""
    scale = min(1.0, longest_px / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def shrink_image(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """An (H,W,3) uint8 image resized for display (Pillow's antialiasing filter; not the network's preprocessing)."""
    if image.shape[:2] == (height, width):
        return image
    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.LANCZOS))


def shrink_mask(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """A (H,W) mask resized by nearest neighbour, as uint8 0/255."""
    binary = (np.asarray(mask) > 0).astype(np.uint8) * np.uint8(255)
    if binary.shape == (height, width):
        return binary
    return np.asarray(Image.fromarray(binary).resize((width, height), Image.Resampling.NEAREST))


def comparison_strip(image: np.ndarray, truth: np.ndarray, prediction: np.ndarray | None, panel_px: int) -> np.ndarray:
    """Three panels side by side, each at most `panel_px` on its longer side: the image; the ground truth (white on
    black); the image with the truth's outline (magenta) and the prediction's (green). Masks of any size are resized
    to the panel by nearest neighbour; a missing prediction (a failed image) draws the truth alone."""
    height, width = fit_size(int(truth.shape[0]), int(truth.shape[1]), panel_px)
    picture = shrink_image(image, height, width)
    truth_small = shrink_mask(truth, height, width)
    outlines = [(truth_small, TRUTH_RGB)]
    if prediction is not None:
        outlines.append((shrink_mask(prediction, height, width), PREDICTION_RGB))
    both = draw_outlines(picture, outlines, thickness_px=max(1, round(min(height, width) / 120)))
    gap = np.full((height, max(2, panel_px // 64), 3), 255, dtype=np.uint8)
    truth_rgb = np.repeat(truth_small[..., None], 3, axis=2)
    return np.concatenate([picture, gap, truth_rgb, gap, both], axis=1)


def _label(picture: Image.Image, text: str) -> None:
    """Write `text` in the top-left corner, white on black, about a twentieth of the image high."""
    size = max(12, min(picture.size) // 20)
    font = ImageFont.load_default(size=size)
    draw = ImageDraw.Draw(picture)
    left, top, right, bottom = draw.textbbox((size // 2, size // 2), text, font=font)
    draw.rectangle((left - size // 4, top - size // 4, right + size // 4, bottom + size // 4), fill=(0, 0, 0))
    draw.text((size // 2, size // 2), text, fill=(255, 255, 255), font=font)
