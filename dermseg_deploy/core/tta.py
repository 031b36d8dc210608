"""Test-time augmentation: run flipped and turned views of a batch through the model and average the logits in the
original orientation. The model file stays a plain single-view model; this wraps any backend's `infer`.

The functions take NumPy arrays (the host stages) or torch tensors (the CUDA stages) alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

VIEW_TRANSFORMS = {"none": (0,), "flips": (0, 4, 6, 2), "dihedral": tuple(range(8))}
"""Each mode's views as indices of `dihedral`: 0 as is, 4 mirrored left-right, 6 up-down, 2 both (a half turn);
1, 3, 5, 7 add the quarter turns."""

Array = Any
"""A NumPy array or a torch tensor (N, C, H, W)."""


def dihedral(x: Array, k: int) -> Array:
    """The k-th (0-7) of the 8 dihedral symmetries of the last two dimensions: mirror left-right if k >= 4, then
    turn by k % 4 quarter turns."""
    if isinstance(x, np.ndarray):
        return np.rot90(x[..., ::-1] if k >= 4 else x, k % 4, axes=(-2, -1))
    return (x.flip(-1) if k >= 4 else x).rot90(k % 4, dims=(-2, -1))


def undo_dihedral(x: Array, k: int) -> Array:
    """The inverse of `dihedral(., k)`: turn back, then mirror back."""
    if isinstance(x, np.ndarray):
        turned = np.rot90(x, -(k % 4), axes=(-2, -1))
        return turned[..., ::-1] if k >= 4 else turned
    turned = x.rot90(-(k % 4), dims=(-2, -1))
    return turned.flip(-1) if k >= 4 else turned


def _concatenate(parts: list[Array]) -> Array:
    if isinstance(parts[0], np.ndarray):
        return np.ascontiguousarray(np.concatenate(parts))
    import torch  # a tensor came in: torch is loaded already

    return torch.cat(parts)


def _as_float32(x: Array) -> Array:
    return x.astype(np.float32, copy=False) if isinstance(x, np.ndarray) else x.float()


def average_over_views(infer: Callable[[Array], Array], images: Array, mode: str,
                       views_per_call: int | None = None) -> Array:
    """Mean logits over `mode`'s views of the (N,3,S,S) batch, each view's logits turned back first.

    `views_per_call` views go through `infer` together as one batch of views x N images (default: all of them;
    a backend with a smaller profile cuts it itself). The sum runs in float32 in a fixed order, so the result does
    not depend on how the views are grouped.
    """
    transforms = VIEW_TRANSFORMS[mode]
    if len(transforms) == 1:
        return infer(images)
    count = images.shape[0]
    group_size = max(1, min(views_per_call or len(transforms), len(transforms)))
    total: Any = None
    for start in range(0, len(transforms), group_size):
        group = transforms[start : start + group_size]
        logits = infer(_concatenate([dihedral(images, k) for k in group]))
        for index, k in enumerate(group):
            restored = _as_float32(undo_dihedral(logits[index * count : (index + 1) * count], k))
            total = restored if total is None else total + restored
    return total / len(transforms)
