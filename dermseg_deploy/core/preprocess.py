"""Resize to the model's square input and normalise; device-agnostic torch code.

The trainer's validation and every backend use these functions, so a score printed during training is
the score the runtime gives.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .metadata import ModelMetadata


def resize_image(image: torch.Tensor, size_px: int) -> torch.Tensor:
    """(3,H,W) or (N,3,H,W) uint8/float in 0-255 -> float32 (…,3,size,size) in 0-255.

    Bilinear, antialiased where the image shrinks, so that large photographs are not aliased.
    """
    batched = image.dim() == 4
    x = image if batched else image.unsqueeze(0)
    x = x.float()
    height, width = x.shape[-2:]
    if (height, width) != (size_px, size_px):
        shrinking = height > size_px or width > size_px
        x = F.interpolate(x, size=(size_px, size_px), mode="bilinear", align_corners=False, antialias=shrinking)
    return x if batched else x.squeeze(0)


def normalize(image: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Float 0-255 RGB -> (x/255 - mean) / std, channel-wise; mean/std on the 0-1 scale."""
    shape = (3, 1, 1) if image.dim() == 3 else (1, 3, 1, 1)
    mean_t = torch.tensor(mean, dtype=image.dtype, device=image.device).view(shape)
    std_t = torch.tensor(std, dtype=image.dtype, device=image.device).view(shape)
    return (image / 255.0 - mean_t) / std_t


def preprocess(image: torch.Tensor, metadata: ModelMetadata, size_px: int | None = None) -> torch.Tensor:
    """One decoded (3,H,W) uint8 image -> the normalised (3,S,S) float32 network input."""
    size = size_px or metadata.size_px
    return normalize(resize_image(image, size), metadata.mean, metadata.std)


def preprocess_batch(images: Sequence[torch.Tensor], metadata: ModelMetadata, size_px: int | None = None) -> torch.Tensor:
    """Decoded images of any sizes -> one (N,3,S,S) float32 batch."""
    return torch.stack([preprocess(image, metadata, size_px) for image in images])
