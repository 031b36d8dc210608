"""Resize to the model's square input and normalise, in NumPy: the one preprocessing every host entry point runs.

The trainer's data and validation, `dermseg-run`, `dermseg-eval`, the Python API, the bench and the scale-out
front ends call these functions, so a score printed during training is the score the runtime gives. The resize is
PyTorch's bilinear filter, antialiased when shrinking (`resize`); the CUDA stages run PyTorch's own on the GPU.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..model.metadata import ModelMetadata
from .resize import resize_bilinear


def resize_image(image: np.ndarray, size_px: int) -> np.ndarray:
    """(H, W, 3) uint8 (or float in 0-255) -> float32 (size, size, 3) in 0-255: bilinear, antialiased where the image
    shrinks (`resize`), as the CUDA stages' `F.interpolate(..., antialias=shrinking)`."""
    return resize_bilinear(image, size_px, size_px)


def normalize(image: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """Float (H, W, 3) RGB in 0-255 -> the (3, H, W) float32 network layout, (x/255 - mean) / std per channel
    (mean and std on the 0-1 scale)."""
    mean_c = np.asarray(mean, dtype=np.float32)
    std_c = np.asarray(std, dtype=np.float32)
    scaled = (image.astype(np.float32, copy=False) / np.float32(255.0) - mean_c) / std_c
    return np.ascontiguousarray(scaled.transpose(2, 0, 1))


def preprocess(image: np.ndarray, metadata: ModelMetadata, size_px: int | None = None) -> np.ndarray:
    """One decoded (H, W, 3) uint8 image -> the normalised (3, S, S) float32 network input."""
    size = size_px or metadata.size_px
    return normalize(resize_image(image, size), metadata.mean, metadata.std)


def preprocess_batch(images: Sequence[np.ndarray], metadata: ModelMetadata, size_px: int | None = None) -> np.ndarray:
    """Decoded images of any sizes -> one (N, 3, S, S) float32 batch."""
    return np.stack([preprocess(image, metadata, size_px) for image in images])
