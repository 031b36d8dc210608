"""Logits to masks at each image's original size; PNG and overlay encoding."""

from __future__ import annotations

import io

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

from .png_encode import encode_grey_png

OUTLINE_RGB = (0, 255, 0)


def logits_to_masks(logits: torch.Tensor, logit_threshold: float) -> torch.Tensor:
    """(N,1,S,S) logits -> (N,1,S,S) uint8 masks holding 0 or 1 at network resolution."""
    return (logits > logit_threshold).to(torch.uint8)


def upsample_mask(mask: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(1,S,S) or (S,S) 0/1 mask -> (height, width) uint8 mask of 0/255, nearest neighbour (pixel centres)."""
    m = mask.reshape(1, 1, *mask.shape[-2:]).to(torch.uint8)
    if m.shape[-2:] != (height, width):
        m = F.interpolate(m, size=(height, width), mode="nearest-exact")
    return m[0, 0] * 255


def lesion_fraction(mask: torch.Tensor) -> float:
    """Share of the pixels marked as lesion in a 0/255 mask."""
    return int(torch.count_nonzero(mask).item()) / max(1, mask.numel())


def encode_png(mask: torch.Tensor) -> bytes:
    """(H,W) uint8 0/255 mask -> single-channel 8-bit PNG bytes (`png_encode`: Up filter, run-length deflate)."""
    return encode_grey_png(np.ascontiguousarray(mask.cpu().numpy().astype(np.uint8, copy=False)))


def mask_outline(mask: torch.Tensor, thickness_px: int) -> torch.Tensor:
    """(H,W) 0/255 mask -> bool (H,W) band of `thickness_px` pixels along the inside of its boundary."""
    m = (mask > 0).float()[None, None]
    k = 2 * thickness_px + 1
    eroded = -F.max_pool2d(-m, kernel_size=k, stride=1, padding=thickness_px)
    return ((m - eroded) > 0)[0, 0]


def render_overlay(image: torch.Tensor, mask: torch.Tensor, quality: int = 90) -> bytes:
    """(3,H,W) uint8 image and its (H,W) mask -> JPEG bytes with the mask outline drawn over the image."""
    height, width = mask.shape
    thickness = max(1, round(min(height, width) / 300))
    outline = mask_outline(mask, thickness)
    rgb = image.clone()
    colour = torch.tensor(OUTLINE_RGB, dtype=torch.uint8, device=rgb.device).view(3, 1)
    rgb[:, outline] = colour.expand(3, int(outline.sum().item()))
    array = np.ascontiguousarray(rgb.permute(1, 2, 0).cpu().numpy())
    picture = Image.fromarray(array)
    if not bool(mask.any()):
        _label(picture, NO_LESION_LABEL)
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


NO_LESION_LABEL = "no lesion found"


def _label(picture: Image.Image, text: str) -> None:
    """Write `text` in the top-left corner, white on black, about a twentieth of the image high."""
    size = max(12, min(picture.size) // 20)
    font = ImageFont.load_default(size=size)
    draw = ImageDraw.Draw(picture)
    left, top, right, bottom = draw.textbbox((size // 2, size // 2), text, font=font)
    draw.rectangle((left - size // 4, top - size // 4, right + size // 4, bottom + size // 4), fill=(0, 0, 0))
    draw.text((size // 2, size // 2), text, fill=(255, 255, 255), font=font)
