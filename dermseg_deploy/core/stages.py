"""The per-image core: decode -> preprocess -> infer -> postprocess, as stage objects for the CPU and CUDA.

Every entry point that turns an image into a mask runs these objects: `dermseg-run` and the Python API
through `pipeline.run_pipeline`, `dermseg-eval` and training validation through the Python API, and
`dermseg-bench`, which times them one by one. Where each stage runs:

    read, decode, preprocess   reader threads, one item at a time (`prepare` runs all three)
    decode_batch, batch_inputs the inference thread, per batch (`to_batch` runs both)
    infer, postprocess         the inference thread, per batch
    finish_mask, overlay_pixels writer threads, one item at a time

On the CPU, decoding, resizing and normalising happen in the reader threads and upsampling in the
writer threads. On CUDA, JPEGs are decoded on the GPU in batches, resized, normalised, thresholded and
upsampled there, and only uint8 masks come back (through pinned memory); `cuda_stages` puts decoding and
preprocessing, and postprocessing, on streams of their own, so that they overlap with inference. How an
image is decoded is `DecodePolicy`'s decision alone; an overlay never changes the mask.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from .backends.base import Backend
from .decode import read_file_bytes
from .decode_policy import DecodePolicy
from .errors import InputImageError, NonFiniteLogitsError
from .inputs import WorkItem
from .lesion_regions import refine_masks
from .mask_options import MaskOptions
from .metadata import ModelMetadata
from .postprocess import logits_to_masks, upsample_mask
from .preprocess import preprocess
from .tta import average_over_views

STAGE_NAMES = ("decode", "preprocess", "inference", "postprocess", "write")
"""The stages a run reports per image: read and decode; resize and normalise; the backend; threshold and
upsample; encode and write the files. Times are the host's: on CUDA the GPU's work is queued without waiting,
so it shows where the host waits for it (postprocess); `dermseg-bench` measures GPU time."""


@dataclass
class Prepared:
    """One input on its way through the stages."""

    item: WorkItem
    seconds: float = 0.0
    data: bytes | None = None
    size_hw: tuple[int, int] = (0, 0)
    """The (height, width) the image is shown at: the size of its mask."""
    orientation: int = 1
    pixels: torch.Tensor | None = None
    network_input: torch.Tensor | None = None
    overlay_image: torch.Tensor | None = None
    error: str | None = None
    error_kind: str | None = None
    """`InputImageError.kind` of the error: unusable, too_large or nonfinite_logits."""
    notes: list[str] = field(default_factory=list)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    """Seconds per stage (`STAGE_NAMES`) spent on this item so far."""

    def fail(self, error: InputImageError) -> None:
        self.error, self.error_kind = error.reason, error.kind

    @property
    def failed(self) -> bool:
        return self.error is not None


class HostStages:
    """The stages on the CPU: everything but inference runs in the reader and writer threads."""

    views_per_call: int | None = 1
    """Test-time augmentation views per backend call: one on the CPU, so that memory stays that of a plain batch."""

    def __init__(self, backend: Backend, metadata: ModelMetadata, policy: DecodePolicy, overlay: bool = False,
                 mask_options: MaskOptions | None = None) -> None:
        self.backend = backend
        self.metadata = metadata
        self.policy = policy
        self.overlay = overlay
        self.mask_options = mask_options or MaskOptions()
        self.device = backend.device

    # ---- reader threads ----------------------------------------------------------------------------------

    def read(self, prepared: Prepared) -> None:
        """The file's bytes (nothing to read for an image given as bytes or pixels)."""
        if prepared.item.data is not None:
            if not prepared.item.data:
                raise InputImageError(prepared.item.source, "is empty (0 bytes)")
            prepared.data = prepared.item.data
        elif prepared.item.pixels is None:
            prepared.data = read_file_bytes(prepared.item.path)

    def decode(self, prepared: Prepared) -> None:
        """Pixels and the displayed size (in-memory images are already pixels)."""
        pixels = prepared.item.pixels
        if pixels is not None:
            prepared.size_hw = (int(pixels.shape[-2]), int(pixels.shape[-1]))
            self.policy.check_pixels(prepared.size_hw, prepared.item.source)
            prepared.pixels = pixels
            return
        assert prepared.data is not None
        decoded = self.policy.decode_on_host(prepared.data, prepared.item.source)
        prepared.pixels, prepared.size_hw = decoded.pixels, decoded.size_hw

    def preprocess(self, prepared: Prepared) -> None:
        """The normalised network input."""
        assert prepared.pixels is not None
        prepared.network_input = preprocess(prepared.pixels, self.metadata).to(self.backend.input_dtype)
        prepared.pixels = None

    def prepare(self, item: WorkItem) -> Prepared:
        """read, decode and preprocess one item; a bad input becomes `error`, never an exception."""
        start = time.perf_counter()
        prepared = Prepared(item)
        try:
            self.read(prepared)
            self.decode(prepared)
            if self.overlay:
                self.keep_overlay_source(prepared)
            decoded = time.perf_counter()
            prepared.stage_seconds["decode"] = decoded - start
            self.preprocess(prepared)
            prepared.stage_seconds["preprocess"] = time.perf_counter() - decoded
        except InputImageError as exc:
            prepared.fail(exc)
        prepared.seconds = time.perf_counter() - start
        return prepared

    def keep_overlay_source(self, prepared: Prepared) -> None:
        """Keep what `overlay_pixels` needs: the pixels where they are full size, else the bytes."""
        pixels = prepared.pixels
        if pixels is not None and tuple(pixels.shape[-2:]) == prepared.size_hw:
            prepared.overlay_image = pixels

    # ---- the inference thread ----------------------------------------------------------------------------

    def decode_batch(self, prepared: list[Prepared]) -> None:
        """Decoding that needs the whole batch (none on the CPU)."""

    def batch_inputs(self, prepared: list[Prepared]) -> tuple[torch.Tensor, list[Prepared]]:
        """The batch tensor on the backend's device, and the items in it (those that have not failed)."""
        ok = [p for p in prepared if not p.failed and p.network_input is not None]
        inputs = [p.network_input for p in ok if p.network_input is not None]
        if not inputs:
            size = self.metadata.size_px
            return torch.empty((0, 3, size, size), dtype=self.backend.input_dtype), []
        return torch.stack(inputs), ok

    def to_batch(self, prepared: list[Prepared]) -> tuple[torch.Tensor, list[Prepared]]:
        self.decode_batch(prepared)
        return self.batch_inputs(prepared)

    def infer(self, batch: torch.Tensor) -> torch.Tensor:
        """The backend's logits, averaged over the test-time augmentation views where asked for."""
        return average_over_views(self.backend.infer, batch, self.mask_options.tta, self.views_per_call)

    def postprocess(self, logits: torch.Tensor, prepared: list[Prepared]) -> list[torch.Tensor | None]:
        """Network-size 0/1 masks on the CPU, post-processed where asked for (`finish_mask` upsamples them in the
        writer threads); None for an image whose logits are not finite (it is marked failed)."""
        finite = finite_logits(logits, prepared)
        masks = refine_masks(logits_to_masks(logits, self.metadata.logit_threshold).cpu(), self.mask_options.postprocess)
        return [mask if ok else None for mask, ok in zip(masks, finite)]

    # ---- writer threads ----------------------------------------------------------------------------------

    def wait_for_mask(self, prepared: Prepared, mask: torch.Tensor) -> None:
        """Block until `postprocess`'s mask for `prepared` is ready on the host (it is, on the CPU)."""

    def finish_mask(self, mask: torch.Tensor, size_hw: tuple[int, int]) -> torch.Tensor:
        """The (H, W) uint8 0/255 mask at the displayed size."""
        return upsample_mask(mask, *size_hw)

    def overlay_pixels(self, prepared: Prepared) -> torch.Tensor:
        """The whole image at its displayed size, on the CPU, for the overlay."""
        if prepared.overlay_image is not None:
            return prepared.overlay_image.cpu()
        assert prepared.data is not None
        return self.policy.decode_full_on_host(prepared.data, prepared.item.source)


NONFINITE_REASON = ("the model gave NaN or infinite logits for this image; its mask cannot be trusted (a corrupt or "
                    "overflowing model)")


def finite_logits(logits: torch.Tensor, prepared: list[Prepared]) -> list[bool]:
    """Whether each image's logits are all finite; an image with a NaN or inf is marked failed (a NaN compares
    false with any threshold, so its mask would be silently empty)."""
    finite = torch.isfinite(logits).flatten(1).all(dim=1).tolist()
    for entry, ok in zip(prepared, finite):
        if not ok:
            entry.fail(NonFiniteLogitsError(entry.item.source, NONFINITE_REASON))
    return finite


def make_stages(backend: Backend, metadata: ModelMetadata, policy: DecodePolicy, overlay: bool = False,
                mask_options: MaskOptions | None = None) -> HostStages:
    """The stage objects for the backend's device."""
    if backend.device.type == "cuda":
        from .cuda_stages import CudaStages

        return CudaStages(backend, metadata, policy, overlay, mask_options)
    return HostStages(backend, metadata, policy, overlay, mask_options)
