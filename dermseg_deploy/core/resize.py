"""Image resizing without torch: the filter of `torch.nn.functional.interpolate(mode="bilinear",
align_corners=False)`, antialiased where the image shrinks, so that every host entry point resizes as the trainer
and the CUDA stages do.

Bilinear interpolation and its antialiased form are one separable filter: a triangle of half-width `max(1, scale)`
(scale = input side / output side) centred on each output pixel's centre in input coordinates, its window edges
rounded as `int(centre -/+ half-width + 0.5)` and its weights normalised over the input pixels it covers. At a
scale up to 1 this is plain bilinear interpolation with the source coordinate clamped at the borders; above 1 the
triangle widens and averages every pixel it covers (PyTorch's `antialias=True`, which reproduces Pillow's filter).
It is computed here by Pillow's 32-bit floating-point resampler (mode `F`: coefficients and sums in double
precision, the horizontal pass first, as in PyTorch), one channel at a time and with the GIL released; never by
Pillow's 8-bit fixed-point path, whose rounding differs. A test pins it against `F.interpolate` on random images
of odd sizes.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def resize_bilinear(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """(H, W, C) uint8 or float pixels -> (height, width, C) float32, bilinear, antialiased along a side that shrinks."""
    if image.shape[:2] == (height, width):
        return image.astype(np.float32)
    out = np.empty((height, width, image.shape[2]), dtype=np.float32)
    for channel in range(image.shape[2]):
        plane = np.ascontiguousarray(image[..., channel])
        source = Image.fromarray(plane).convert("F") if plane.dtype == np.uint8 else Image.fromarray(
            plane.astype(np.float32, copy=False), mode="F")
        out[..., channel] = np.asarray(source.resize((width, height), Image.Resampling.BILINEAR))
    return out
