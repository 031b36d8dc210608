"""Lesion post-processing of network-resolution masks: keep the largest connected region, fill holes.

The rules (the same on every device):

- `largest` keeps the largest 8-connected lesion region; on a tie, the first in raster order. An empty mask
  stays empty: no lesion is invented.
- `fill-holes` marks as lesion every background pixel that cannot reach the image border through background
  (4-connected, `binary_fill_holes`' default). A gap that touches the border is therefore not a hole: a lesion
  that reaches the border keeps its border-touching gaps, and a mask that covers the whole image stays whole.
- `largest` runs before `fill-holes`, so a speck inside a hole is removed and then the hole filled.

On the CPU this is `scipy.ndimage` on NumPy masks; on CUDA `cupyx.scipy.ndimage` where CuPy is installed (the
masks stay on the device), else `scipy.ndimage` on a host copy. Each is imported only when post-processing is
asked for.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from ..util.devices import Device
from ..util.extras import require_module


def refine_mask(mask: Any, steps: tuple[str, ...], xp: ModuleType, ndimage: ModuleType) -> Any:
    """One 2-D bool mask (a NumPy or CuPy array, with `xp` and `ndimage` the matching modules) -> the refined mask."""
    if "largest" in steps:
        labels, count = ndimage.label(mask, structure=xp.ones((3, 3), dtype=bool))
        if int(count) > 1:
            sizes = xp.bincount(labels.ravel())
            sizes[0] = 0  # the background
            mask = labels == sizes.argmax()
    if "fill-holes" in steps:
        mask = ndimage.binary_fill_holes(mask)
    return mask


def scipy_ndimage() -> ModuleType:
    return require_module("scipy.ndimage", "--postprocess", "pip install scipy")


def cupy_modules() -> tuple[ModuleType, ModuleType] | None:
    try:
        import cupy
        from cupyx.scipy import ndimage
    except ImportError:
        return None
    return cupy, ndimage


def postprocess_engine(device: Device) -> str:
    """Which library post-processes masks on `device` (said once when a run starts)."""
    if device.is_cuda:
        if cupy_modules() is not None:
            return f"cupyx.scipy.ndimage on {device}"
        return "scipy.ndimage on the CPU (CuPy is not installed, so CUDA masks are copied to the host for it)"
    scipy_ndimage()
    return "scipy.ndimage on the CPU"


def refine_host_masks(masks: np.ndarray, steps: tuple[str, ...]) -> np.ndarray:
    """(N,1,S,S) uint8 0/1 masks -> the same, post-processed (`steps` as in MaskOptions)."""
    if not steps or masks.shape[0] == 0:
        return masks
    ndimage = scipy_ndimage()
    array = masks.astype(bool)
    refined = np.stack([refine_mask(array[i, 0], steps, np, ndimage)[None] for i in range(array.shape[0])])
    return refined.astype(np.uint8)
