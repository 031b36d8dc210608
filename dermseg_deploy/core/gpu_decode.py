"""Batched JPEG decoding on the GPU (torchvision's nvJPEG path), file by file where a batch is refused."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .orientation import apply_orientation


def decode_jpegs_on_gpu(
    blobs: list[bytes], device: torch.device, orientations: Sequence[int] | None = None
) -> list[torch.Tensor | None]:
    """(3,H,W) uint8 RGB tensors on `device`, turned by each file's EXIF orientation where `orientations`
    gives them (raw otherwise); None for a file the GPU decoder refuses."""
    decoded = _decode(blobs, device)
    if orientations is None:
        return decoded
    return [None if pixels is None else apply_orientation(pixels, o) for pixels, o in zip(decoded, orientations)]


def _decode(blobs: list[bytes], device: torch.device) -> list[torch.Tensor | None]:
    from torchvision.io import ImageReadMode, decode_jpeg

    if not blobs:
        return []
    encoded = [torch.frombuffer(bytearray(blob), dtype=torch.uint8) for blob in blobs]
    try:
        return list(decode_jpeg(encoded, mode=ImageReadMode.RGB, device=device))
    except (RuntimeError, ValueError):
        decoded: list[torch.Tensor | None] = []
        for data in encoded:
            try:
                decoded.append(decode_jpeg(data, mode=ImageReadMode.RGB, device=device))
            except (RuntimeError, ValueError):
                decoded.append(None)
        return decoded
