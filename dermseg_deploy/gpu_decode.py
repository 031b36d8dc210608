"""Batched JPEG decoding on the GPU (torchvision's nvJPEG path), file by file where a batch is refused."""

from __future__ import annotations

import torch


def is_jpeg(data: bytes) -> bool:
    return data[:3] == b"\xff\xd8\xff"


def decode_jpegs_on_gpu(blobs: list[bytes], device: torch.device) -> list[torch.Tensor | None]:
    """(3,H,W) uint8 RGB tensors on `device`, raw orientation; None for a file the GPU decoder refuses."""
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
