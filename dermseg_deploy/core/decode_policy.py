"""How an image is decoded for a model: one decision, made here, for every entry point.

On the CPU, Pillow decodes every format; a large JPEG is decoded at libjpeg's reduced DCT scale (1/2,
1/4, 1/8) that still leaves both sides at least the network input (`reduced_jpeg`, on by default). On a
CUDA device, JPEGs are decoded at full size by the GPU's decoder (nvJPEG through torchvision); other
formats, and JPEGs the GPU decoder refuses, are decoded at full size by Pillow. Everywhere: EXIF
orientation applied (masks have the size a viewer shows), and images above `max_pixels` refused.
`dermseg-run`, `dermseg-eval`, training validation, the Python API and `dermseg-bench` all decode
through this object, so they give the same masks on the same device.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ImageTooLargeError
from ..util.devices import CPU, Device
from .decode import DEFAULT_MAX_PIXELS, decode_image, is_jpeg, read_header


@dataclass(frozen=True)
class HostDecoded:
    """(H, W, 3) uint8 pixels decoded on the CPU, and the (height, width) the image is shown at (the mask's size)."""

    pixels: np.ndarray
    size_hw: tuple[int, int]


@dataclass(frozen=True)
class DecodePolicy:
    """Decoding for a `size_px` network input on `device`; see the module docstring for the rules."""

    size_px: int
    max_pixels: int = DEFAULT_MAX_PIXELS
    reduced_jpeg: bool = True
    """CPU only: decode large JPEGs at a reduced DCT scale (mask IoU 0.996 on average against full decoding on
    the ISIC 2017 full-resolution images at 512 px: benchmarks/results/cpu-pipeline-2026-11-26/)."""
    device: Device = field(default_factory=lambda: CPU)

    @property
    def on_gpu(self) -> bool:
        return self.device.is_cuda

    def decodes_on_gpu(self, data: bytes) -> bool:
        """True where the pixels of `data` come from the GPU decoder (a JPEG on a CUDA device)."""
        return self.on_gpu and is_jpeg(data)

    def inspect(self, data: bytes, name: object) -> tuple[tuple[int, int], int]:
        """From the header: the displayed (height, width) and the EXIF orientation; refuses oversized images."""
        size_hw, orientation = read_header(data, name)
        self.check_pixels(size_hw, name)
        return size_hw, orientation

    def check_pixels(self, size_hw: tuple[int, int], name: object) -> None:
        height, width = size_hw
        if height * width > self.max_pixels:
            raise ImageTooLargeError(name, f"has {width}x{height} = {width * height} pixels, over the limit of "
                                     f"{self.max_pixels}")

    def decode_on_host(self, data: bytes, name: object) -> HostDecoded:
        """Pillow decoding as this policy wants it; the pixels may be smaller than the displayed size."""
        reduced = self.reduced_jpeg and not self.on_gpu
        pixels = decode_image(data, name, self.max_pixels, self.size_px if reduced else None)
        size_hw = (int(pixels.shape[0]), int(pixels.shape[1]))
        if reduced and is_jpeg(data):
            size_hw = read_header(data, name)[0]
        return HostDecoded(pixels, size_hw)

    def decode_full_on_host(self, data: bytes, name: object) -> np.ndarray:
        """The whole image at its displayed size (for overlays), whatever the policy for the network input."""
        return decode_image(data, name, self.max_pixels)

    def decode_on_gpu(self, blobs: Sequence[bytes], orientations: Sequence[int]) -> list[Any]:
        """Full-size (3,H,W) uint8 torch tensors on the device, oriented; None where the GPU decoder refuses a file."""
        from .gpu_decode import decode_jpegs_on_gpu

        return decode_jpegs_on_gpu(list(blobs), self.device.to_torch(), orientations)
