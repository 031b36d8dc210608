"""Logits to masks on the host: the threshold, and nearest-neighbour upsampling to each image's displayed size.

`upsample_mask` picks the source pixel of each output pixel as `torch.nn.functional.interpolate(mode=
"nearest-exact")` does on the CPU (`floor((i + 0.5) * scale)` with a float32 scale), so masks are the same pixels
whichever stack made them; the CUDA stages do the same on the GPU with torch itself.
"""

from __future__ import annotations

import functools

import numpy as np


def logits_to_masks(logits: np.ndarray, logit_threshold: float) -> np.ndarray:
    """(N,1,S,S) logits -> (N,1,S,S) uint8 masks holding 0 or 1 at network resolution."""
    return (logits > logit_threshold).astype(np.uint8)


@functools.lru_cache(maxsize=256)
def nearest_indices(in_size: int, out_size: int) -> np.ndarray:
    """For each of `out_size` output pixels, the input pixel nearest to its centre (PyTorch's nearest-exact)."""
    scale = np.float32(in_size) / np.float32(out_size)
    positions = ((np.arange(out_size, dtype=np.float64) + 0.5) * np.float64(scale)).astype(np.float32)
    indices = np.minimum(np.floor(positions).astype(np.int64), in_size - 1)
    indices.setflags(write=False)
    return indices


@functools.lru_cache(maxsize=256)
def nearest_counts(in_size: int, out_size: int) -> np.ndarray:
    """How many output pixels each input pixel becomes (0 for one that shrinking skips)."""
    counts = np.bincount(nearest_indices(in_size, out_size), minlength=in_size)
    counts.setflags(write=False)
    return counts


def resize_nearest(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """The first two axes of `array` resized to (height, width) by nearest neighbour (pixel centres).

    The source indices never decrease, so indexing with them is repeating each source row and column by its count:
    whole-row copies, about 20x faster than fancy indexing on a full-resolution mask."""
    wide = np.repeat(array, nearest_counts(array.shape[1], width), axis=1)
    return np.repeat(wide, nearest_counts(array.shape[0], height), axis=0)


def upsample_mask(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """(1,S,S) or (S,S) 0/1 mask -> (height, width) uint8 mask of 0/255."""
    square = mask.reshape(mask.shape[-2:]).astype(np.uint8) * np.uint8(255)
    return square if square.shape == (height, width) else resize_nearest(square, height, width)


def lesion_fraction(mask: np.ndarray) -> float:
    """Share of the pixels marked as lesion in a 0/255 mask."""
    return int(np.count_nonzero(mask)) / max(1, mask.size)


def finite_per_image(logits: np.ndarray) -> list[bool]:
    """Whether each image's logits are all finite."""
    return np.isfinite(logits.reshape(logits.shape[0], -1)).all(axis=1).tolist()
