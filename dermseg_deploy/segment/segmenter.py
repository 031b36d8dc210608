"""The Python API: open a model file, segment images, get masks back at each image's displayed size.

    from dermseg_deploy import Segmenter
    with Segmenter.open("engines/model.onnx") as seg:
        mask = seg.segment("lesion.jpg")              # (H, W) uint8 array of 0/255
        results = seg.segment_files(paths, out_dir)   # one SegmentResult per file; never raises for a bad image

    Segmenter.open(path, tta="dihedral", postprocess=("largest", "fill-holes"))  # see mask_options

Every call runs the per-image core (`stages`) that `dermseg-run`, `dermseg-eval`, training validation and
`dermseg-bench` run, so the masks are the same wherever they come from (on the same device).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple

import numpy as np

from ..backends import BackendOptions, open_backend
from ..backends.base import Backend
from ..core.decode import DEFAULT_MAX_PIXELS
from ..core.decode_policy import DecodePolicy
from ..core.mask_options import MaskOptions
from ..core.quality import DEFAULT_REVIEW_BELOW, QualityScorer
from ..core.stages import HostStages
from ..core.work_item import WorkItem
from ..errors import InputImageError, UserError
from ..files.inputs import output_paths, unique_outputs
from ..files.manifest import STATUS_FAILED
from ..files.outputs import make_output_folders
from ..model.metadata import ModelMetadata
from ..util.devices import resolve_device
from .image_input import ImageLike, ImageTypeError, as_pixels_or_path, is_single_image
from .pipeline import RunOptions, run_pipeline
from .results import SegmentResult


def make_stages(backend: Backend, metadata: ModelMetadata, policy: DecodePolicy, overlay: bool = False,
                mask_options: MaskOptions | None = None, review_below: float = DEFAULT_REVIEW_BELOW) -> HostStages:
    """The stage objects for the backend's device: NumPy on the host, torch on CUDA (imported only there)."""
    if backend.device.is_cuda:
        from ..core.cuda_stages import CudaStages

        return CudaStages(backend, metadata, policy, overlay, mask_options, review_below)
    return HostStages(backend, metadata, policy, overlay, mask_options, review_below)


DEFAULT_BATCH_SIZE = 4
DEFAULT_IO_THREADS = 4


class QualityMask(NamedTuple):
    """A mask and what dermseg predicts of it (`Segmenter.segment(..., quality=True)`)."""

    mask: np.ndarray
    predicted_jaccard: float
    calibrated: bool
    """False where the model carries no calibration for these settings: `predicted_jaccard` is then the raw score."""
    review: bool
    """True where `predicted_jaccard` is below the Segmenter's `review_below`."""


def _quality_mask(result: SegmentResult) -> QualityMask:
    assert result.mask is not None and result.quality is not None
    quality = result.quality
    return QualityMask(result.mask, quality.predicted_jaccard, quality.calibrated, quality.review)


class Segmenter:
    """A backend plus the decode policy and the stages that turn images into masks at their own size."""

    def __init__(self, backend: Backend, threshold: float | None = None, max_pixels: int = DEFAULT_MAX_PIXELS,
                 reduced_jpeg: bool = True, mask_options: MaskOptions | None = None,
                 review_below: float = DEFAULT_REVIEW_BELOW) -> None:
        """`reduced_jpeg`: on the CPU, decode large JPEGs at a reduced DCT scale (see `DecodePolicy`);
        `mask_options`: test-time augmentation and lesion post-processing (default: neither); `review_below`: masks
        predicted below this Jaccard are flagged for review (`core.quality`)."""
        if not 0.0 <= review_below <= 1.0:
            raise UserError(f"review threshold {review_below}: must lie in [0, 1] (a Jaccard)")
        self.backend = backend
        self.mask_options = mask_options or MaskOptions()
        self.metadata = backend.metadata if threshold is None else backend.metadata.with_updates(threshold=threshold)
        self.policy = DecodePolicy(self.metadata.size_px, max_pixels, reduced_jpeg, backend.device)
        self.review_below = review_below
        self.quality = QualityScorer.for_run(self.metadata, self.mask_options, review_below)
        """How masks' predicted Jaccard is computed here (`quality.describe()` says whether it is calibrated)."""

    @classmethod
    def open(
        cls, model_path: str | Path | None = None, device: str = "auto", size_px: int | None = None,
        threshold: float | None = None, options: BackendOptions | None = None, threads: int | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS, reduced_jpeg: bool = True, tta: str = "none",
        postprocess: str | Sequence[str] = (), review_below: float = DEFAULT_REVIEW_BELOW,
    ) -> Segmenter:
        """Open `.pt`, `.onnx` or `.plan` on `device` (auto, cpu, cuda or cuda:N); `.pt`, CUDA and TensorRT need
        torch (the `train` extra), `.onnx` on the CPU needs only the runtime install.

        `threads` sets the intra-op threads of ONNX Runtime and PyTorch, so that several workers on one
        machine share its cores (ONNX Runtime ignores OMP_NUM_THREADS). `tta` (none, flips, dihedral) and
        `postprocess` (largest, fill-holes: a sequence or comma-separated text) are `dermseg-run`'s `--tta` and
        `--postprocess`. Without `model_path`, the model shipped with dermseg (checked against its SHA-256; a
        `UserWarning` says which model it is, its licence and its card).
        """
        if model_path is None:
            from ..model.shipped import shipped_model_path

            model_path = shipped_model_path(lambda line: warnings.warn(line, UserWarning, stacklevel=4))
        steps = postprocess if isinstance(postprocess, str) else ",".join(postprocess)
        mask_options = MaskOptions.parse(tta, steps)
        options = options or BackendOptions()
        if threads is not None:
            options = options.with_threads(threads)
        backend = open_backend(model_path, resolve_device(device), size_px, options)
        return cls(backend, threshold, max_pixels, reduced_jpeg, mask_options, review_below)

    def __repr__(self) -> str:
        size = self.metadata.size_px
        model = str(self.backend.path) if self.backend.path is not None else "<in-memory model>"
        return (f"Segmenter(model={model!r}, backend={self.backend.name!r}, device={str(self.backend.device)!r}, "
                f"input={size}x{size}, masks={self.mask_options.describe()!r})")

    def stages(self, overlay: bool = False) -> HostStages:
        """The stage objects every entry point runs (the bench times them one by one)."""
        return make_stages(self.backend, self.metadata, self.policy, overlay, self.mask_options, self.review_below)

    # ---- many files: results, never exceptions for a bad image ----------------------------------------------

    def segment_items(
        self, items: Iterable[WorkItem], options: RunOptions | None = None, overlay: bool = False,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> Iterator[SegmentResult]:
        """Results for work items (inputs with their output paths), in order; what `dermseg-run` runs."""
        yield from run_pipeline(self.stages(overlay), items, options or RunOptions(), should_stop)

    def iter_segment_files(
        self, paths: Iterable[str | Path], out_dir: str | Path | None = None, *, overwrite: bool = False,
        overlay: bool = False, keep_masks: bool | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
        io_threads: int = DEFAULT_IO_THREADS,
    ) -> Iterator[SegmentResult]:
        """`segment_files`, one result at a time (for long lists: masks need not all be held at once)."""
        folder = Path(out_dir) if out_dir is not None else None
        candidates = [WorkItem(Path(p), *output_paths(Path(p), folder)) if folder else WorkItem(Path(p)) for p in paths]
        items, clashes = unique_outputs(candidates)
        make_output_folders(items)
        refused = {id(item) for item in candidates} - {id(item) for item in items}
        keep = keep_masks if keep_masks is not None else folder is None
        options = RunOptions(batch_size, overwrite, io_threads, keep)
        results = self.segment_items(items, options, overlay and folder is not None)
        clash_reasons = iter(clashes)
        for item in candidates:
            if id(item) in refused:
                yield SegmentResult(item, STATUS_FAILED, error=next(clash_reasons).reason)
            else:
                yield next(results)

    def segment_files(
        self, paths: Iterable[str | Path], out_dir: str | Path | None = None, *, overwrite: bool = False,
        overlay: bool = False, keep_masks: bool | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
        io_threads: int = DEFAULT_IO_THREADS,
    ) -> list[SegmentResult]:
        """One `SegmentResult` per path, in order; a bad image is a `failed` result with `dermseg-run`'s error text.

        With `out_dir`, masks are written there as `dermseg-run` names them (`<stem>_segmentation.png`,
        atomically; existing ones skipped unless `overwrite`; `overlay` adds `<stem>_overlay.jpg`), and the
        results hold their paths; without it, the results hold the mask arrays (`keep_masks` decides either way).
        """
        return list(self.iter_segment_files(paths, out_dir, overwrite=overwrite, overlay=overlay, keep_masks=keep_masks,
                                            batch_size=batch_size, io_threads=io_threads))

    # ---- images: masks, exceptions for a bad image ---------------------------------------------------------

    def segment(
        self, images: ImageLike | Sequence[ImageLike], batch_size: int = DEFAULT_BATCH_SIZE, *, quality: bool = False
    ) -> Any:
        """One image -> its (H, W) uint8 mask of 0/255; a list or tuple of images -> a list of masks. With
        `quality=True`, each mask comes as a `QualityMask` (the mask, its predicted Jaccard, whether that is
        calibrated, whether to review it: `core.quality`).

        An image is an (H, W, 3), (H, W) or (H, W, 4) uint8 array, a (3, H, W) uint8 tensor, a PIL image or a
        path (see `image_input`). Other types and dtypes raise ImageTypeError (a TypeError), wrong shapes
        ImageShapeError (a ValueError); a file that cannot be decoded raises InputImageError.
        """
        many = not is_single_image(images)
        results = self._segment_many(list(images) if many else [images], batch_size)
        outputs = [_quality_mask(r) if quality else r.mask for r in results]
        return outputs if many else outputs[0]

    def segment_file(self, path: str | Path) -> np.ndarray:
        """One image file -> its (H, W) uint8 mask of 0/255 (EXIF orientation applied, as a viewer shows it)."""
        if not isinstance(path, (str, Path)):
            raise ImageTypeError(f"segment_file takes a path, got a {type(path).__module__}.{type(path).__qualname__}; "
                                 "use segment() for arrays, tensors and PIL images")
        mask = self._segment_many([path], DEFAULT_BATCH_SIZE)[0].mask
        assert mask is not None
        return mask

    def _segment_many(self, images: list[ImageLike], batch_size: int) -> list[SegmentResult]:
        items = []
        for index, image in enumerate(images):
            value = as_pixels_or_path(image, f"image {index}")
            items.append(WorkItem(value) if isinstance(value, Path) else WorkItem(f"<image {index}>", pixels=value))
        options = RunOptions(batch_size, io_threads=min(DEFAULT_IO_THREADS, max(1, len(items))), keep_masks=True)
        results: list[SegmentResult] = []
        for result in self.segment_items(items, options):
            if result.mask is None:
                raise InputImageError(result.source, result.error or "was not segmented")
            results.append(result)
        return results

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> Segmenter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
