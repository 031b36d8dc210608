"""EXIF orientation applied to (…, H, W) tensors, on any device: what PIL's `exif_transpose` does."""

from __future__ import annotations

import torch


def apply_orientation(image: torch.Tensor, orientation: int) -> torch.Tensor:
    """Turn raw decoded pixels (…, H, W) into the image as a viewer shows it, for EXIF orientation 1-8."""
    if orientation == 2:
        return image.flip(-1)
    if orientation == 3:
        return image.flip(-1).flip(-2)
    if orientation == 4:
        return image.flip(-2)
    if orientation == 5:
        return image.transpose(-1, -2)
    if orientation == 6:
        return torch.rot90(image, k=-1, dims=(-2, -1))
    if orientation == 7:
        return image.transpose(-1, -2).flip(-1).flip(-2)
    if orientation == 8:
        return torch.rot90(image, k=1, dims=(-2, -1))
    return image
