"""Test-time augmentation: run flipped and turned views of a batch through the model and average the logits in the
original orientation. The model file stays a plain single-view model; this wraps any backend's `infer`."""

from __future__ import annotations

from collections.abc import Callable

import torch

VIEW_TRANSFORMS = {"none": (0,), "flips": (0, 4, 6, 2), "dihedral": tuple(range(8))}
"""Each mode's views as indices of `dihedral`: 0 as is, 4 mirrored left-right, 6 up-down, 2 both (a half turn);
1, 3, 5, 7 add the quarter turns."""


def dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """The k-th (0-7) of the 8 dihedral symmetries of the last two dimensions: mirror left-right if k >= 4, then
    turn by k % 4 quarter turns."""
    if k >= 4:
        x = x.flip(-1)
    return torch.rot90(x, k % 4, dims=(-2, -1))


def undo_dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """The inverse of `dihedral(., k)`: turn back, then mirror back."""
    x = torch.rot90(x, -(k % 4), dims=(-2, -1))
    return x.flip(-1) if k >= 4 else x


def average_over_views(
    infer: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, mode: str, views_per_call: int | None = None
) -> torch.Tensor:
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
    total: torch.Tensor | None = None
    for start in range(0, len(transforms), group_size):
        group = transforms[start : start + group_size]
        logits = infer(torch.cat([dihedral(images, k) for k in group]))
        for index, k in enumerate(group):
            restored = undo_dihedral(logits[index * count : (index + 1) * count], k).float()
            total = restored if total is None else total + restored
    assert total is not None
    return total / len(transforms)
