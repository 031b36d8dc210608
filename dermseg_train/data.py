"""ISIC image/mask pairs: discovery, a seeded split, and a training dataset."""

from __future__ import annotations

import hashlib
import io
import random
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Dataset

from dermseg_deploy.atomic import atomic_write_bytes
from dermseg_deploy.decode import IMAGE_SUFFIXES, read_image
from dermseg_deploy.errors import InputImageError, UserError
from dermseg_deploy.metadata import ModelMetadata
from dermseg_deploy.preprocess import normalize, resize_image

from .augment import DEFAULT_LIGHTING, DEFAULT_MAX_ROTATION_DEG, augment_pair

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


def default_val_count(n_pairs: int) -> int:
    """500 images as in the paper, but never more than a quarter of a smaller data set."""
    return min(500, max(1, n_pairs // 4))


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


class ResizeCache:
    """Images and masks resized to a training size, decoded once and kept on disk across runs.

    Keyed by the source files' resolved paths, sizes and modification times, and the training size.
    Entries are written atomically, so parallel loaders and killed runs never leave a half entry.
    """

    def __init__(self, folder: str | Path | None) -> None:
        self.folder = Path(folder) if folder else None

    def _key(self, pair: Pair, size_px: int) -> str:
        parts = [str(size_px)]
        for path in (pair.image, pair.mask):
            stat = path.stat()
            parts += [str(path.resolve()), str(stat.st_size), str(stat.st_mtime_ns)]
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]

    def load(self, pair: Pair, size_px: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(3,S,S) uint8 image and (1,S,S) uint8 0/1 mask at `size_px`."""
        path = self.folder / str(size_px) / f"{self._key(pair, size_px)}.npz" if self.folder else None
        if path is not None and path.is_file():
            try:
                with np.load(path) as data:
                    return torch.from_numpy(data["image"]), torch.from_numpy(data["mask"])
            except (OSError, ValueError, KeyError):
                path.unlink(missing_ok=True)  # a damaged entry is rebuilt
        image, mask = resize_pair(pair, size_px)
        if path is not None:
            buffer = io.BytesIO()
            np.savez(buffer, image=image.numpy(), mask=mask.numpy())
            atomic_write_bytes(path, buffer.getvalue())
        return image, mask


def resize_pair(pair: Pair, size_px: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode and resize an image (bilinear, antialiased, as deployment) and its mask (nearest)."""
    image = read_image(pair.image)
    mask = read_mask(pair.mask)
    if tuple(mask.shape) != tuple(image.shape[-2:]):
        raise InputImageError(pair.mask, f"mask size {tuple(mask.shape)} != image size {tuple(image.shape[-2:])}")
    resized = resize_image(image, size_px).round().clamp(0, 255).to(torch.uint8)
    resized_mask = F.interpolate(mask[None, None].to(torch.uint8), size=(size_px,) * 2, mode="nearest-exact")[0]
    return resized, resized_mask


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A seed for one sample of one epoch, the same in any worker process and after a resume."""
    digest = hashlib.sha256(f"{seed}:{epoch}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


class SegmentationDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Pairs at a training size from the resize cache, augmented per (seed, epoch, index), normalised."""

    def __init__(
        self,
        pairs: list[Pair],
        size_px: int,
        metadata: ModelMetadata,
        augment: bool,
        cache: ResizeCache | None = None,
        seed: int = 0,
        max_rotation_deg: float = DEFAULT_MAX_ROTATION_DEG,
        lighting_strength: float = DEFAULT_LIGHTING,
    ) -> None:
        self.pairs, self.size_px, self.metadata, self.augment = pairs, size_px, metadata, augment
        self.cache = cache or ResizeCache(None)
        self.seed, self.epoch = seed, 0
        self.max_rotation_deg, self.lighting_strength = max_rotation_deg, lighting_strength

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image_u8, mask_u8 = self.cache.load(self.pairs[index], self.size_px)
        image, mask = image_u8.float(), mask_u8.float()
        if self.augment:
            generator = torch.Generator().manual_seed(sample_seed(self.seed, self.epoch, index))
            image, mask = augment_pair(image, mask, generator, self.max_rotation_deg, self.lighting_strength)
        return normalize(image.contiguous(), self.metadata.mean, self.metadata.std), mask.contiguous()
