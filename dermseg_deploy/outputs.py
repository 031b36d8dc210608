"""Writing one input's outputs: the mask PNG (and the overlay JPEG), each atomically."""

from __future__ import annotations

import torch

from .atomic import atomic_write_bytes
from .errors import OutputWriteError
from .inputs import WorkItem
from .postprocess import encode_png, render_overlay


def write_outputs(item: WorkItem, mask: torch.Tensor, overlay_image: torch.Tensor | None = None) -> None:
    """Encode and write `item`'s mask (and overlay, when an image is given); OSError -> OutputWriteError."""
    if item.mask_path is None:
        return
    try:
        atomic_write_bytes(item.mask_path, encode_png(mask))
        if overlay_image is not None and item.overlay_path is not None:
            atomic_write_bytes(item.overlay_path, render_overlay(overlay_image, mask))
    except OSError as exc:
        raise OutputWriteError(f"{item.mask_path}: cannot write ({exc.strerror or exc})") from exc
