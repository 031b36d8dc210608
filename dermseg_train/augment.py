"""Augmentation applied to an image and its mask together (the mask by nearest neighbour), seeded."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from dermseg_deploy.core.tta import dihedral

DEFAULT_MAX_ROTATION_DEG = 10.0
DEFAULT_LIGHTING = 0.2


def rotate(image: torch.Tensor, mask: torch.Tensor, degrees: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate (C,H,W) image (bilinear, border pixels repeated) and (1,H,W) mask (nearest) about the centre."""
    if degrees == 0.0:
        return image, mask
    theta = math.radians(degrees)
    matrix = torch.tensor(
        [[math.cos(theta), -math.sin(theta), 0.0], [math.sin(theta), math.cos(theta), 0.0]], dtype=torch.float32
    )[None]
    grid = F.affine_grid(matrix, [1, *image.shape], align_corners=False)
    rotated = F.grid_sample(image[None].float(), grid, mode="bilinear", padding_mode="border", align_corners=False)[0]
    rotated_mask = F.grid_sample(mask[None].float(), grid, mode="nearest", padding_mode="border", align_corners=False)[0]
    return rotated, rotated_mask


def lighting(image: torch.Tensor, brightness: float, contrast: float) -> torch.Tensor:
    """Scale contrast about the image mean and shift brightness; `image` is 0-255 float, clamped back to 0-255."""
    mean = image.mean()
    return ((image - mean) * (1.0 + contrast) + mean + brightness * 255.0).clamp(0.0, 255.0)


def augment_pair(
    image: torch.Tensor,
    mask: torch.Tensor,
    generator: torch.Generator,
    max_rotation_deg: float = DEFAULT_MAX_ROTATION_DEG,
    lighting_strength: float = DEFAULT_LIGHTING,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random dihedral symmetry, rotation and lighting for a (3,S,S) 0-255 image and its (1,S,S) 0/1 mask."""
    k = int(torch.randint(8, (), generator=generator).item())
    image, mask = dihedral(image, k), dihedral(mask, k)
    degrees = float((torch.rand((), generator=generator) * 2 - 1).item()) * max_rotation_deg
    image, mask = rotate(image, mask, degrees)
    brightness, contrast = ((torch.rand(2, generator=generator) * 2 - 1) * lighting_strength).tolist()
    return lighting(image, brightness * 0.5, contrast), mask
