"""The stages around inference, for the CPU and for a CUDA GPU.

`prepare` runs in reader threads (read, and on the CPU decode + resize + normalise); `to_batch` and
`to_masks` run on the inference thread; `finish_mask` runs in writer threads. On the CPU a JPEG is
decoded at a reduced DCT scale when the network input is much smaller than the photo. On CUDA, JPEGs are
decoded on the GPU in batches, resized, normalised, thresholded and upsampled there, and only uint8 masks
come back (through pinned memory).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from .decode import decode_for_input, decode_image, read_file_bytes, read_header
from .errors import InputImageError
from .gpu_decode import decode_jpegs_on_gpu, is_jpeg
from .inputs import WorkItem
from .metadata import ModelMetadata
from .postprocess import logits_to_masks, upsample_mask
from .preprocess import preprocess


@dataclass
class Prepared:
    """One input after the reader thread: its displayed size and whatever the device stage needs next."""

    item: WorkItem
    seconds: float = 0.0
    size_hw: tuple[int, int] = (0, 0)
    network_input: torch.Tensor | None = None
    pixels: torch.Tensor | None = None
    jpeg: bytes | None = None
    orientation: int = 1
    overlay_image: torch.Tensor | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class StageConfig:
    metadata: ModelMetadata
    device: torch.device
    input_dtype: torch.dtype = torch.float32
    max_pixels: int = 120_000_000
    overlay: bool = False
    draft: bool = True


class HostStages:
    """CPU stages: everything but inference in the reader and writer threads."""

    def __init__(self, config: StageConfig) -> None:
        self.config = config

    def prepare(self, item: WorkItem) -> Prepared:
        start = time.perf_counter()
        prepared = Prepared(item)
        try:
            data = read_file_bytes(item.source)
            metadata = self.config.metadata
            draft = self.config.draft and not self.config.overlay
            pixels, prepared.size_hw = decode_for_input(data, item.source, metadata.size_px, self.config.max_pixels, draft)
            if self.config.overlay:
                prepared.overlay_image = pixels
            prepared.network_input = preprocess(pixels, metadata)
        except InputImageError as exc:
            prepared.error = exc.reason
        prepared.seconds = time.perf_counter() - start
        return prepared

    def to_batch(self, prepared: list[Prepared]) -> tuple[torch.Tensor, list[Prepared]]:
        ok = [p for p in prepared if p.error is None and p.network_input is not None]
        inputs = [p.network_input for p in ok if p.network_input is not None]
        if not inputs:
            size = self.config.metadata.size_px
            return torch.empty((0, 3, size, size), dtype=self.config.input_dtype), []
        return torch.stack(inputs).to(self.config.input_dtype), ok

    def to_masks(self, logits: torch.Tensor, prepared: list[Prepared]) -> list[torch.Tensor]:
        """Network-size 0/1 masks on the CPU; `finish_mask` upsamples them in the writer threads."""
        return list(logits_to_masks(logits, self.config.metadata.logit_threshold).cpu())

    @staticmethod
    def finish_mask(mask: torch.Tensor, size_hw: tuple[int, int]) -> torch.Tensor:
        return upsample_mask(mask, *size_hw)


class CudaStages(HostStages):
    """GPU stages: nvJPEG decoding, resizing, thresholding and upsampling on the device."""

    def prepare(self, item: WorkItem) -> Prepared:
        start = time.perf_counter()
        prepared = Prepared(item)
        try:
            data = read_file_bytes(item.source)
            if self.config.overlay or not is_jpeg(data):
                pixels = decode_image(data, item.source, self.config.max_pixels)
                prepared.size_hw = (pixels.shape[-2], pixels.shape[-1])
                prepared.overlay_image = pixels if self.config.overlay else None
                prepared.pixels = pixels.pin_memory()
            else:
                prepared.size_hw, prepared.orientation = read_header(data, item.source)
                height, width = prepared.size_hw
                if height * width > self.config.max_pixels:
                    raise InputImageError(item.source, f"has {width}x{height} = {width * height} pixels, over the "
                                          f"limit of {self.config.max_pixels}")
                prepared.jpeg = data
        except InputImageError as exc:
            prepared.error = exc.reason
        prepared.seconds = time.perf_counter() - start
        return prepared

    def _decode_on_device(self, prepared: list[Prepared]) -> None:
        jpegs = [p for p in prepared if p.error is None and p.jpeg is not None]
        blobs = [p.jpeg for p in jpegs if p.jpeg is not None]
        decoded = decode_jpegs_on_gpu(blobs, self.config.device, [p.orientation for p in jpegs])
        for entry, pixels in zip(jpegs, decoded):
            if pixels is None:
                entry.notes.append("the GPU JPEG decoder refused it; decoded on the CPU")
                try:
                    pixels = decode_image(entry.jpeg or b"", entry.item.source, self.config.max_pixels)
                except InputImageError as exc:
                    entry.error = exc.reason
                    continue
            entry.pixels = pixels
            entry.jpeg = None

    def to_batch(self, prepared: list[Prepared]) -> tuple[torch.Tensor, list[Prepared]]:
        self._decode_on_device(prepared)
        metadata, device = self.config.metadata, self.config.device
        ok = [p for p in prepared if p.error is None and p.pixels is not None]
        batch = torch.empty((len(ok), 3, metadata.size_px, metadata.size_px), dtype=self.config.input_dtype, device=device)
        for index, entry in enumerate(ok):
            assert entry.pixels is not None
            pixels = entry.pixels.to(device, non_blocking=True)
            batch[index] = preprocess(pixels, metadata)
            entry.pixels = None
        return batch, ok

    def to_masks(self, logits: torch.Tensor, prepared: list[Prepared]) -> list[torch.Tensor]:
        """Full-size uint8 0/255 masks, upsampled on the GPU and copied into pinned host memory."""
        masks = logits_to_masks(logits, self.config.metadata.logit_threshold)
        host: list[torch.Tensor] = []
        for mask, entry in zip(masks, prepared):
            full = upsample_mask(mask, *entry.size_hw)
            pinned = torch.empty(full.shape, dtype=torch.uint8, pin_memory=True)
            pinned.copy_(full, non_blocking=True)
            host.append(pinned)
        torch.cuda.current_stream(self.config.device).synchronize()
        return host

    @staticmethod
    def finish_mask(mask: torch.Tensor, size_hw: tuple[int, int]) -> torch.Tensor:
        return mask


def make_stages(config: StageConfig) -> HostStages:
    return CudaStages(config) if config.device.type == "cuda" else HostStages(config)
