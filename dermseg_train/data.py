"""ISIC image/mask pairs: discovery, a seeded split, and a training dataset."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Dataset

from dermseg_deploy.decode import IMAGE_SUFFIXES, read_image
from dermseg_deploy.errors import InputImageError, UserError
from dermseg_deploy.metadata import ModelMetadata
from dermseg_deploy.preprocess import normalize, resize_image

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


def split_pairs(pairs: list[Pair], val_count: int, seed: int) -> tuple[list[Pair], list[Pair]]:
    """Seeded random split into (train, validation); the same seed and pairs give the same split."""
    if not 0 < val_count < len(pairs):
        raise UserError(f"validation count {val_count} must lie between 1 and {len(pairs) - 1}")
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    val_index = set(order[:val_count])
    train = [p for i, p in enumerate(pairs) if i not in val_index]
    val = [p for i, p in enumerate(pairs) if i in val_index]
    return train, val


def read_mask(path: Path) -> torch.Tensor:
    """A ground-truth PNG -> (H,W) bool tensor, binarised at > 128 as the ISIC scorer does."""
    try:
        with Image.open(path) as image:
            gray = np.asarray(image.convert("L"))
    except (OSError, ValueError) as exc:
        raise InputImageError(path, f"mask cannot be decoded ({exc})") from exc
    return torch.from_numpy(gray > 128)


def dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """The k-th (0-7) of the 8 dihedral symmetries of the last two dimensions."""
    if k >= 4:
        x = x.flip(-1)
    return torch.rot90(x, k % 4, dims=(-2, -1))


class SegmentationDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Pairs resized to a square, normalised like deployment, optionally with dihedral augmentation."""

    def __init__(self, pairs: list[Pair], size_px: int, metadata: ModelMetadata, augment: bool) -> None:
        self.pairs, self.size_px, self.metadata, self.augment = pairs, size_px, metadata, augment

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        pair = self.pairs[index]
        image = read_image(pair.image)
        mask = read_mask(pair.mask)
        if tuple(mask.shape) != tuple(image.shape[-2:]):
            raise InputImageError(pair.mask, f"mask size {tuple(mask.shape)} != image size {tuple(image.shape[-2:])}")
        x = resize_image(image, self.size_px)
        y = F.interpolate(mask[None, None].float(), size=(self.size_px,) * 2, mode="nearest-exact")[0]
        if self.augment:
            k = int(torch.randint(8, ()).item())
            x, y = dihedral(x, k), dihedral(y, k)
        return normalize(x.contiguous(), self.metadata.mean, self.metadata.std), y.contiguous()
