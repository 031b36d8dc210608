"""Writing one input's outputs: the mask PNG (and the overlay JPEG), each atomically."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..core.work_item import WorkItem
from ..errors import OutputFolderGoneError, OutputWriteError
from ..util.atomic import atomic_write_bytes
from .overlay import render_overlay
from .png_encode import encode_grey_png


def encode_png(mask: np.ndarray) -> bytes:
    """(H,W) uint8 0/255 mask -> single-channel 8-bit PNG bytes (`png_encode`: Up filter, run-length deflate)."""
    return encode_grey_png(np.ascontiguousarray(mask, dtype=np.uint8))


def make_output_folders(items: Iterable[WorkItem]) -> None:
    """Create the folders the items' masks go to, before the run (writes never create folders); OSError ->
    OutputWriteError."""
    for folder in sorted({item.mask_path.parent for item in items if item.mask_path is not None}):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputWriteError(f"{folder}: cannot create the output folder ({exc.strerror or exc})") from exc


def write_outputs(item: WorkItem, mask: np.ndarray, overlay_image: np.ndarray | None = None,
                  review: str | None = None) -> None:
    """Encode and write `item`'s mask (and overlay, when an image is given; `review` marks it as flagged) into
    folders `make_output_folders` made. A folder that is gone is this item's OutputFolderGoneError (never
    recreated); any other OSError is an OutputWriteError (the disk is the problem: the run stops)."""
    if item.mask_path is None:
        return
    try:
        atomic_write_bytes(item.mask_path, encode_png(mask), make_folder=False)
        if overlay_image is not None and item.overlay_path is not None:
            atomic_write_bytes(item.overlay_path, render_overlay(overlay_image, mask, review=review), make_folder=False)
    except FileNotFoundError as exc:
        raise OutputFolderGoneError(item.source, f"its output folder {item.mask_path.parent} no longer exists "
                                                 "(deleted during the run?); nothing was written for it") from exc
    except OSError as exc:
        raise OutputWriteError(f"{item.mask_path}: cannot write ({exc.strerror or exc})") from exc
