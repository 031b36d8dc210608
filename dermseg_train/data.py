"""Training data: a seeded split of ISIC pairs, a resize cache, and the augmented, normalised training dataset.

Pairs are found by `dermseg_deploy.evaluation.pairs` (the evaluation's own discovery); images are resized and
normalised by the deployment's own functions (`dermseg_deploy.core.preprocess`), so a model learns from the inputs
it will be given.
"""

from __future__ import annotations

import hashlib
import io
import random
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from dermseg_deploy.core.decode import read_image
from dermseg_deploy.core.masks import resize_nearest
from dermseg_deploy.core.preprocess import normalize, resize_image
from dermseg_deploy.errors import InputImageError, UserError
from dermseg_deploy.evaluation.pairs import Pair, read_mask
from dermseg_deploy.model.metadata import ModelMetadata
from dermseg_deploy.util.atomic import atomic_write_bytes

from .augment import DEFAULT_LIGHTING, DEFAULT_MAX_ROTATION_DEG, augment_pair

CACHE_FORMAT = "numpy-resize-1"
"""Part of every cache key: entries made by another resize implementation are not reused."""


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


class ResizeCache:
    """Images and masks resized to a training size, decoded once and kept on disk across runs.

    Keyed by the source files' resolved paths, sizes and modification times, and the training size.
    Entries are written atomically, so parallel loaders and killed runs never leave a half entry.
    """

    def __init__(self, folder: str | Path | None) -> None:
        self.folder = Path(folder) if folder else None

    def _key(self, pair: Pair, size_px: int) -> str:
        parts = [CACHE_FORMAT, str(size_px)]
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
    """Decode and resize an image (deployment's resize: bilinear, antialiased when shrinking) and its mask (nearest),
    as a (3,S,S) uint8 image and a (1,S,S) uint8 0/1 mask."""
    image = read_image(pair.image)
    mask = read_mask(pair.mask)
    if mask.shape != image.shape[:2]:
        raise InputImageError(pair.mask, f"mask size {mask.shape} != image size {image.shape[:2]}")
    resized = np.clip(np.rint(resize_image(image, size_px)), 0, 255).astype(np.uint8)
    resized_mask = resize_nearest(mask.astype(np.uint8), size_px, size_px)
    return (torch.from_numpy(np.ascontiguousarray(resized.transpose(2, 0, 1))),
            torch.from_numpy(np.ascontiguousarray(resized_mask[None])))


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
        normalised = normalize(image.permute(1, 2, 0).numpy(), self.metadata.mean, self.metadata.std)
        return torch.from_numpy(normalised), mask.contiguous()
