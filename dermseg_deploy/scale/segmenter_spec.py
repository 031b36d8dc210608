"""How a Ray actor or Serve replica opens the model: what `Segmenter.open` takes, as plain data to ship."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..backends import BackendOptions
from ..core.mask_options import MaskOptions
from ..defaults import DEFAULT_MAX_PIXELS
from ..segment.segmenter import Segmenter


@dataclass(frozen=True)
class SegmenterSpec:
    """`Segmenter.open`'s arguments; the model file must be readable where the worker runs."""

    model_path: str
    device: str = "auto"
    size_px: int | None = None
    threshold: float | None = None
    options: BackendOptions = field(default_factory=BackendOptions)
    max_pixels: int = DEFAULT_MAX_PIXELS
    reduced_jpeg: bool = True
    mask_options: MaskOptions = field(default_factory=MaskOptions)

    def on(self, device: str, threads: int) -> SegmenterSpec:
        """The same model on `device` with `threads` intra-op threads (what one worker is given)."""
        return replace(self, device=device, options=self.options.with_threads(threads))

    def open(self) -> Segmenter:
        return Segmenter.open(self.model_path, self.device, self.size_px, self.threshold, self.options,
                              max_pixels=self.max_pixels, reduced_jpeg=self.reduced_jpeg, tta=self.mask_options.tta,
                              postprocess=self.mask_options.postprocess)
