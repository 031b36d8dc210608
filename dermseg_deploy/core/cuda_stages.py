"""The per-image core's stages on a CUDA device (torch tensors), on three streams so that the GPU's stages overlap.

    prep stream        nvJPEG decoding, upload, resize and normalise of batch k+1
    current stream     inference of batch k (the backend's own work, or its own stream after this one)
    post stream        finite check, threshold, post-processing (CuPy), upsampling and the copy to pinned host
                       memory of batch k-1

Events order them: inference waits for its batch's preprocessing, postprocessing for its batch's logits, and
a writer thread waits for its mask's copy (`wait_for_mask`) before encoding it. The inference thread never
waits for the GPU, so it queues batch k+1's preprocessing while batch k infers. Imported only for a CUDA device
(it needs torch); what leaves these stages is NumPy, as from the host stages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..backends.base import Backend
from ..errors import InputImageError, NonFiniteLogitsError
from ..model.metadata import ModelMetadata
from .decode_policy import DecodePolicy
from .device_ops import logits_to_masks, preprocess, refine_device_masks, upsample_mask
from .mask_options import MaskOptions
from .quality import DEFAULT_REVIEW_BELOW
from .quality_device import device_signals
from .stages import NONFINITE_REASON, HostStages, Prepared


@dataclass(frozen=True)
class PendingMask:
    """A mask on its way to the host: ready once `done` has completed; `finite` says whether its logits were."""

    done: torch.cuda.Event
    finite: torch.Tensor
    """A pinned bool tensor of one element, filled by the same copy."""


def _chw_tensor(pixels: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 host pixels -> a (3, H, W) uint8 tensor in pinned memory, ready for a non-blocking upload."""
    return torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1))).pin_memory()


class CudaStages(HostStages):
    """The stages on a CUDA device: GPU JPEG decoding, resizing, thresholding and upsampling on the device."""

    views_per_call = None
    """All test-time augmentation views in one backend call (a plan's profile cuts it to its largest batch)."""

    def __init__(self, backend: Backend, metadata: ModelMetadata, policy: DecodePolicy, overlay: bool = False,
                 mask_options: MaskOptions | None = None, review_below: float = DEFAULT_REVIEW_BELOW) -> None:
        super().__init__(backend, metadata, policy, overlay, mask_options, review_below)
        self.torch_device = backend.device.to_torch()
        self.input_dtype = backend.input_dtype or torch.float32
        self.prep_stream = torch.cuda.Stream(self.torch_device)
        self.post_stream = torch.cuda.Stream(self.torch_device)
        self._pending: dict[int, PendingMask] = {}

    def decode(self, prepared: Prepared) -> None:
        """Reader thread: the header of a GPU-decoded JPEG (its pixels come in `decode_batch`); others on the CPU,
        into pinned memory."""
        data = prepared.data
        if prepared.item.pixels is None and data is not None and self.policy.decodes_on_gpu(data):
            prepared.size_hw, prepared.orientation = self.policy.inspect(data, prepared.item.source)
            return
        super().decode(prepared)
        assert prepared.pixels is not None
        prepared.pixels = _chw_tensor(prepared.pixels)

    def preprocess(self, prepared: Prepared) -> None:
        """Preprocessing happens on the device, per batch (`batch_inputs`)."""

    def keep_overlay_source(self, prepared: Prepared) -> None:
        if prepared.pixels is not None:
            prepared.overlay_image = prepared.pixels

    def decode_batch(self, prepared: list[Prepared]) -> None:
        """nvJPEG on the batch's JPEGs (prep stream); a file the GPU decoder refuses is decoded on the CPU, with a
        note."""
        pending = [p for p in prepared if not p.failed and p.pixels is None and p.data is not None]
        with torch.cuda.stream(self.prep_stream):
            decoded = self.policy.decode_on_gpu([p.data or b"" for p in pending], [p.orientation for p in pending])
        for entry, pixels in zip(pending, decoded):
            if pixels is None:
                entry.notes.append("the GPU JPEG decoder refused it; decoded on the CPU")
                try:
                    pixels = _chw_tensor(self.policy.decode_full_on_host(entry.data or b"", entry.item.source))
                except InputImageError as exc:
                    entry.fail(exc)
                    continue
            entry.pixels = pixels
            if self.overlay:
                entry.overlay_image = pixels

    def batch_inputs(self, prepared: list[Prepared]) -> tuple[Any, list[Prepared]]:
        """The batch, preprocessed on the prep stream; the current (inference) stream waits for it."""
        metadata, device = self.metadata, self.torch_device
        ok = [p for p in prepared if not p.failed and p.pixels is not None]
        with torch.cuda.stream(self.prep_stream):
            batch = torch.empty((len(ok), 3, metadata.size_px, metadata.size_px), dtype=self.input_dtype, device=device)
            for index, entry in enumerate(ok):
                assert entry.pixels is not None
                batch[index] = preprocess(entry.pixels.to(device, non_blocking=True), metadata)
                entry.pixels = None
        inference = torch.cuda.current_stream(device)
        inference.wait_stream(self.prep_stream)
        batch.record_stream(inference)
        return batch, ok

    def infer(self, batch: Any) -> Any:
        """The device backend's logits on the device, averaged over the test-time augmentation views."""
        from .tta import average_over_views

        return average_over_views(self.backend.infer, batch, self.mask_options.tta, self.views_per_call)

    def postprocess(self, logits: Any, prepared: list[Prepared]) -> list[Any]:
        """Full-size uint8 0/255 masks, upsampled on the post stream and copied into pinned host memory without
        waiting: a writer thread waits for each (`wait_for_mask`), and fails one whose logits were not finite."""
        self.post_stream.wait_stream(torch.cuda.current_stream(self.torch_device))
        logits.record_stream(self.post_stream)
        host: list[Any] = []
        with torch.cuda.stream(self.post_stream):
            finite = torch.isfinite(logits).flatten(1).all(dim=1)
            masks = refine_device_masks(logits_to_masks(logits, self.metadata.logit_threshold),
                                        self.mask_options.postprocess)
            flags = torch.empty(finite.shape, dtype=torch.bool, pin_memory=True)
            flags.copy_(finite, non_blocking=True)
            signals = device_signals(logits, masks)  # three numbers per image come back, not the maps
            host_signals = torch.empty(signals.shape, dtype=signals.dtype, pin_memory=True)
            host_signals.copy_(signals, non_blocking=True)
            outputs = []
            for mask, entry in zip(masks, prepared):
                full = upsample_mask(mask, *entry.size_hw)
                pinned = torch.empty(full.shape, dtype=torch.uint8, pin_memory=True)
                pinned.copy_(full, non_blocking=True)
                outputs.append(pinned)
            done = torch.cuda.Event()
            done.record(self.post_stream)
        for index, (pinned, entry) in enumerate(zip(outputs, prepared)):
            self._pending[id(pinned)] = PendingMask(done, flags[index : index + 1])
            entry.quality_signals = host_signals[index]  # read after wait_for_mask, once `done` has completed
            host.append(pinned)
        return host

    def wait_for_mask(self, prepared: Prepared, mask: Any) -> None:
        """Writer thread: wait for the mask's copy; raise NonFiniteLogitsError if its logits were not finite."""
        pending = self._pending.pop(id(mask), None)
        if pending is None:
            return
        pending.done.synchronize()
        if not bool(pending.finite.item()):
            raise NonFiniteLogitsError(prepared.item.source, NONFINITE_REASON)

    def finish_mask(self, mask: Any, size_hw: tuple[int, int]) -> np.ndarray:
        """The mask is full size already; its pinned host copy as NumPy (after `wait_for_mask`)."""
        return mask.numpy()

    def overlay_pixels(self, prepared: Prepared) -> np.ndarray:
        """The whole image at its displayed size, (H, W, 3) uint8 on the host, for the overlay."""
        if prepared.overlay_image is not None:
            return np.ascontiguousarray(prepared.overlay_image.permute(1, 2, 0).cpu().numpy())
        return super().overlay_pixels(prepared)
