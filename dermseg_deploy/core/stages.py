"""The per-image core on the host: read -> decode -> preprocess -> infer -> postprocess, as stage objects on NumPy.

Every entry point that turns an image into a mask runs these objects (or their CUDA twin, `cuda_stages`):
`dermseg-run` and the Python API through `segment.pipeline`, `dermseg-eval` and training validation through the
Python API, and `dermseg-bench`, which times them one by one. Where each stage runs:

    read, decode, preprocess   reader threads, one item at a time (`prepare` runs all three)
    decode_batch, batch_inputs the inference thread, per batch (`to_batch` runs both)
    infer, postprocess         the inference thread, per batch
    finish_mask, overlay_pixels writer threads, one item at a time

On the host, decoding, resizing and normalising happen in the reader threads and upsampling in the writer threads,
all on NumPy arrays: pixels are (H, W, 3) uint8, network inputs (3, S, S) float32, logits (N, 1, S, S) float32,
masks (H, W) uint8 of 0/255. A backend that takes torch tensors (PyTorch on the CPU) is fed through
`Backend.infer_host`. How an image is decoded is `DecodePolicy`'s decision alone; an overlay never changes the mask.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..backends.base import Backend
from ..errors import INTERNAL_KIND, InputImageError, NonFiniteLogitsError, internal_reason
from ..model.metadata import ModelMetadata
from .decode import read_file_bytes
from .decode_policy import DecodePolicy
from .lesion_regions import refine_host_masks
from .mask_options import MaskOptions
from .masks import finite_per_image, logits_to_masks, upsample_mask
from .preprocess import preprocess
from .quality import DEFAULT_REVIEW_BELOW, MaskQuality, QualityScorer, host_signals
from .tta import average_over_views
from .work_item import WorkItem

STAGE_NAMES = ("read", "decode", "preprocess", "inference", "postprocess", "write")
"""The stages every report names, per image: read the file; decode it; resize and normalise; the backend; threshold,
post-process and upsample; encode and write the files. `dermseg-run` reports host times (on CUDA the GPU's work is
queued without waiting, so it shows where the host waits for it); `dermseg-bench` times the same stages, on CUDA
with events on the streams that run them."""


@dataclass
class Prepared:
    """One input on its way through the stages (`pixels` and `network_input` are NumPy arrays on the host, torch
    tensors in the CUDA stages)."""

    item: WorkItem
    seconds: float = 0.0
    data: bytes | None = None
    size_hw: tuple[int, int] = (0, 0)
    """The (height, width) the image is shown at: the size of its mask."""
    orientation: int = 1
    pixels: Any = None
    network_input: Any = None
    overlay_image: Any = None
    error: str | None = None
    error_kind: str | None = None
    """`InputImageError.kind` of the error: unusable, too_large or nonfinite_logits; `internal` for an exception
    dermseg did not expect (`fail_internal`)."""
    traceback: str | None = None
    """The traceback of an `internal` failure (what `--debug` prints)."""
    quality_signals: Any = None
    """The mask's quality signals (`core.quality`): NumPy on the host; a pinned tensor filled with the mask's copy on
    CUDA (ready after `wait_for_mask`)."""
    notes: list[str] = field(default_factory=list)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    """Seconds per stage (`STAGE_NAMES`) spent on this item so far."""

    def fail(self, error: InputImageError) -> None:
        self.error, self.error_kind = error.reason, error.kind

    def fail_internal(self, error: BaseException) -> None:
        """An exception that is no input's fault and no known failure: this item fails, the others go on."""
        self.error, self.error_kind = internal_reason(error), INTERNAL_KIND
        self.traceback = "".join(traceback.format_exception(error))

    @property
    def failed(self) -> bool:
        return self.error is not None


NONFINITE_REASON = ("the model gave NaN or infinite logits for this image; its mask cannot be trusted (a corrupt or "
                    "overflowing model)")


def mark_nonfinite(finite: list[bool], prepared: list[Prepared]) -> list[bool]:
    """Mark failed each image whose logits hold a NaN or inf (a NaN compares false with any threshold, so its mask
    would be silently empty); returns `finite`."""
    for entry, ok in zip(prepared, finite):
        if not ok:
            entry.fail(NonFiniteLogitsError(entry.item.source, NONFINITE_REASON))
    return finite


class HostStages:
    """The stages on the CPU, on NumPy: everything but inference runs in the reader and writer threads."""

    views_per_call: int | None = 1
    """Test-time augmentation views per backend call: one on the CPU, so that memory stays that of a plain batch."""

    def __init__(self, backend: Backend, metadata: ModelMetadata, policy: DecodePolicy, overlay: bool = False,
                 mask_options: MaskOptions | None = None, review_below: float = DEFAULT_REVIEW_BELOW) -> None:
        self.backend = backend
        self.metadata = metadata
        self.policy = policy
        self.overlay = overlay
        self.mask_options = mask_options or MaskOptions()
        self.device = backend.device
        self.quality = QualityScorer.for_run(metadata, self.mask_options, review_below)

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
            prepared.size_hw = (int(pixels.shape[0]), int(pixels.shape[1]))
            self.policy.check_pixels(prepared.size_hw, prepared.item.source)
            prepared.pixels = pixels
            return
        assert prepared.data is not None
        decoded = self.policy.decode_on_host(prepared.data, prepared.item.source)
        prepared.pixels, prepared.size_hw = decoded.pixels, decoded.size_hw

    def preprocess(self, prepared: Prepared) -> None:
        """The normalised network input."""
        assert prepared.pixels is not None
        prepared.network_input = preprocess(prepared.pixels, self.metadata)
        prepared.pixels = None

    def prepare(self, item: WorkItem) -> Prepared:
        """read, decode and preprocess one item; a bad input becomes `error`, never an exception."""
        start = time.perf_counter()
        prepared = Prepared(item)
        try:
            self.read(prepared)
            read = time.perf_counter()
            prepared.stage_seconds["read"] = read - start
            self.decode(prepared)
            if self.overlay:
                self.keep_overlay_source(prepared)
            decoded = time.perf_counter()
            prepared.stage_seconds["decode"] = decoded - read
            self.preprocess(prepared)
            prepared.stage_seconds["preprocess"] = time.perf_counter() - decoded
        except InputImageError as exc:
            prepared.fail(exc)
        except Exception as exc:  # one image's unexpected failure (a library's bug, a decoder's crash) is its own
            prepared.fail_internal(exc)
        prepared.seconds = time.perf_counter() - start
        return prepared

    def keep_overlay_source(self, prepared: Prepared) -> None:
        """Keep what `overlay_pixels` needs: the pixels where they are full size, else the bytes."""
        pixels = prepared.pixels
        if pixels is not None and tuple(pixels.shape[:2]) == prepared.size_hw:
            prepared.overlay_image = pixels

    # ---- the inference thread ----------------------------------------------------------------------------

    def decode_batch(self, prepared: list[Prepared]) -> None:
        """Decoding that needs the whole batch (none on the CPU)."""

    def batch_inputs(self, prepared: list[Prepared]) -> tuple[Any, list[Prepared]]:
        """The (N, 3, S, S) float32 batch, and the items in it (those that have not failed)."""
        ok = [p for p in prepared if not p.failed and p.network_input is not None]
        if not ok:
            size = self.metadata.size_px
            return np.empty((0, 3, size, size), dtype=np.float32), []
        return np.stack([p.network_input for p in ok]), ok

    def to_batch(self, prepared: list[Prepared]) -> tuple[Any, list[Prepared]]:
        self.decode_batch(prepared)
        return self.batch_inputs(prepared)

    def infer(self, batch: Any) -> Any:
        """The backend's logits, averaged over the test-time augmentation views where asked for."""
        return average_over_views(self.backend.infer_host, batch, self.mask_options.tta, self.views_per_call)

    def postprocess(self, logits: Any, prepared: list[Prepared]) -> list[Any]:
        """Network-size 0/1 masks, post-processed where asked for (`finish_mask` upsamples them in the writer
        threads); None for an image whose logits are not finite (it is marked failed)."""
        finite = mark_nonfinite(finite_per_image(logits), prepared)
        masks = refine_host_masks(logits_to_masks(logits, self.metadata.logit_threshold), self.mask_options.postprocess)
        signals = host_signals(logits, masks)
        for entry, row in zip(prepared, signals):
            entry.quality_signals = row
        return [mask if ok else None for mask, ok in zip(masks, finite)]

    # ---- writer threads ----------------------------------------------------------------------------------

    def wait_for_mask(self, prepared: Prepared, mask: Any) -> None:
        """Block until `postprocess`'s mask for `prepared` is ready on the host (it is, on the CPU)."""

    def mask_quality(self, prepared: Prepared) -> MaskQuality | None:
        """The mask's predicted quality (after `wait_for_mask`); None where its signals were not computed."""
        if prepared.quality_signals is None:
            return None
        return self.quality.score([float(value) for value in prepared.quality_signals])

    def finish_mask(self, mask: Any, size_hw: tuple[int, int]) -> np.ndarray:
        """The (H, W) uint8 0/255 mask at the displayed size, as a NumPy array."""
        return upsample_mask(mask, *size_hw)

    def overlay_pixels(self, prepared: Prepared) -> np.ndarray:
        """The whole image at its displayed size, (H, W, 3) uint8, for the overlay."""
        if prepared.overlay_image is not None:
            return np.asarray(prepared.overlay_image)
        assert prepared.data is not None
        return self.policy.decode_full_on_host(prepared.data, prepared.item.source)
