"""Time each stage of segmentation, the inference alone, and the whole `dermseg-run` pipeline.

Stage latencies are per batch, in milliseconds: on CUDA from CUDA events on the current stream
(inference: GPU compute time, as trtexec's), on the CPU from `perf_counter`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from PIL import Image

from ..core.image_formats import ALLOWED_FORMATS
from ..core.stages import STAGE_NAMES, HostStages, Prepared
from ..core.work_item import WorkItem
from ..errors import InferenceError, InputImageError, UserError
from ..files.inputs import output_paths, plan_inputs
from ..files.manifest import STATUS_OK
from ..files.outputs import make_output_folders, write_outputs
from ..segment.pipeline import RunOptions
from ..segment.segmenter import Segmenter
from ..util.devices import Device
from .settings import MIN_PERCENTILE_SAMPLES, BenchSettings
from .stats import summarize_ms

STEADY_BATCHES = 8
STAGES = STAGE_NAMES
"""The stages `dermseg-run` reports, timed one by one (read, decode, preprocess, inference, postprocess, write)."""
T = TypeVar("T")


@dataclass
class BenchResult:
    engine: str
    backend: str
    batch_size: int
    stage_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    inference_images_per_s: float = 0.0
    end_to_end_images_per_s: float = 0.0
    end_to_end_images: int = 0
    mean_iou_vs_reference: float | None = None
    reference: str | None = None
    tf32: bool = False
    notes: list[str] = field(default_factory=list)
    size_px: int = 0
    achieved_tflops: float | None = None
    """The model's FLOPs per image times the inference-only images/s (on CUDA: over GPU compute time)."""
    peak_share: float | None = None
    """`achieved_tflops` over the card's dense FP16 datasheet peak (`flops.DENSE_FP16_PEAK_TFLOPS`), or on the CPU over
    the estimated peak of the units the row's arithmetic runs on (`cpu_peak`), where known."""
    peak_how: str | None = None
    """What the peak is: the datasheet figure, or how the CPU's estimate was computed."""
    arithmetic: str = "fp32"
    """The precision most of the network computed in (`Backend.arithmetic`)."""
    compile_seconds: float | None = None
    """torch.compile's first batch (`compiled:` rows): tracing, code generation and the run."""
    images_per_batch: float = 0.0
    """Images behind each stage sample (the batch size; 1 for the naive baseline, which goes image by image)."""
    masks: str = "plain"
    """Test-time augmentation and post-processing (`MaskOptions.describe`)."""
    views: int = 1
    """Inferences per image (test-time augmentation views)."""

    @property
    def label(self) -> str:
        """The backend, with the mask setting where it is not plain."""
        return self.backend if self.masks == "plain" else f"{self.backend} [{self.masks}]"

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @property
    def samples(self) -> int:
        return int(self.stage_ms.get("inference", {}).get("count", 0))

    def percentile_warning(self) -> str | None:
        """A line when the percentiles rest on too few samples to mean much."""
        if self.samples >= MIN_PERCENTILE_SAMPLES:
            return None
        return (f"{self.label} at batch {self.batch_size}: p90/p95/p99 rest on {self.samples} samples (fewer than "
                f"{MIN_PERCENTILE_SAMPLES}; the max is most of them): raise --max-seconds or --min-iterations")


class StageTimer:
    """Times a callable in milliseconds: on CUDA with events on the stream that runs the stage (`stream`, default the
    current one: the CUDA stages decode and preprocess on a stream of their own, and postprocess on another), on the
    CPU with perf_counter."""

    def __init__(self, device: Device) -> None:
        self.device = device

    def __call__(self, fn: Callable[[], T], stream: Any = None) -> tuple[T, float]:
        if self.device.is_cuda:
            import torch  # the CUDA stages run: torch is loaded

            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record(stream)
            result = fn()
            end.record(stream)
            end.synchronize()
            return result, float(start.elapsed_time(end))
        begin = time.perf_counter()
        result = fn()
        return result, (time.perf_counter() - begin) * 1000.0


def _run_each(fn: Callable[[Prepared], None], prepared: list[Prepared]) -> None:
    """One stage on each item; the bench's images must all be usable, so a bad one ends the benchmark."""
    for entry in prepared:
        try:
            fn(entry)
        except InputImageError as exc:
            raise UserError(f"--images: {exc}") from exc


def _decode(stages: HostStages, prepared: list[Prepared]) -> None:
    _run_each(stages.decode, prepared)
    stages.decode_batch(prepared)
    failed = [p for p in prepared if p.failed]
    if failed:
        raise UserError(f"--images: {failed[0].item.source}: {failed[0].error}")


def _preprocess(stages: HostStages, prepared: list[Prepared]) -> Any:
    _run_each(stages.preprocess, prepared)
    batch, _ = stages.batch_inputs(prepared)
    return batch


def _postprocess(stages: HostStages, logits: Any, prepared: list[Prepared]) -> list[np.ndarray]:
    masks = stages.postprocess(logits, prepared)
    broken = [entry for mask, entry in zip(masks, prepared) if mask is None]
    if broken:
        raise InferenceError(f"{broken[0].item.source}: {broken[0].error}")
    finished = []
    for mask, entry in zip(masks, prepared):
        assert mask is not None
        try:
            stages.wait_for_mask(entry, mask)
        except InputImageError as exc:
            raise InferenceError(str(exc)) from exc
        finished.append(stages.finish_mask(mask, entry.size_hw))
    return finished


def measure_stages(
    segmenter: Segmenter, images: list[Path], settings: BenchSettings, out_dir: Path,
    on_batch: Callable[[], None] = lambda: None,
) -> dict[str, dict[str, float]]:
    """Run the stage objects `dermseg-run` runs, one after another, on batches cycled from `images`, and time
    each; the masks are written to `out_dir` as `dermseg-run` names them. Warm-up batches are not recorded."""
    stages = segmenter.stages()
    out_dir.mkdir(parents=True, exist_ok=True)
    timer = StageTimer(stages.device)
    samples: dict[str, list[float]] = {stage: [] for stage in STAGES}
    iteration, cursor, started = 0, 0, time.perf_counter()
    while True:
        recorded = iteration - settings.warmup_iterations
        if settings.done(recorded, time.perf_counter() - started):
            break
        paths = [images[(cursor + k) % len(images)] for k in range(settings.batch_size)]
        cursor += settings.batch_size
        prepared = [Prepared(WorkItem(path, *output_paths(path, out_dir))) for path in paths]
        begin = time.perf_counter()
        _run_each(stages.read, prepared)
        read_ms = (time.perf_counter() - begin) * 1000.0
        prep_stream, post_stream = getattr(stages, "prep_stream", None), getattr(stages, "post_stream", None)
        _, decode_ms = timer(partial(_decode, stages, prepared), prep_stream)
        batch, preprocess_ms = timer(partial(_preprocess, stages, prepared), prep_stream)
        logits, inference_ms = timer(partial(stages.infer, batch))
        masks, postprocess_ms = timer(partial(_postprocess, stages, logits, prepared), post_stream)
        begin = time.perf_counter()
        for entry, mask in zip(prepared, masks):
            write_outputs(entry.item, mask)
        write_ms = (time.perf_counter() - begin) * 1000.0
        if recorded >= 0:
            for stage, value in zip(STAGES, (read_ms, decode_ms, preprocess_ms, inference_ms, postprocess_ms, write_ms)):
                samples[stage].append(value)
        iteration += 1
        on_batch()
    return {stage: summarize_ms(values) for stage, values in samples.items()}


def measure_end_to_end(segmenter: Segmenter, images: list[Path], settings: BenchSettings, out_dir: Path,
                       min_seconds: float, on_pass: Callable[[], None] = lambda: None) -> tuple[float, int]:
    """Images/s of the pipeline `dermseg-run` runs, in steady state: each run goes over the images repeated to
    at least `STEADY_BATCHES` batches (the masks are rewritten), until `min_seconds` passed."""
    plan = plan_inputs(list(images), out_dir)
    make_output_folders(plan.items)
    repeats = max(1, -(-STEADY_BATCHES * settings.batch_size // len(plan.items)))
    items = plan.items * repeats
    options = RunOptions(settings.batch_size, overwrite=True, io_threads=settings.io_threads)
    done, started = 0, time.perf_counter()
    while True:
        done += sum(r.status == STATUS_OK for r in segmenter.segment_items(items, options))
        on_pass()
        elapsed = time.perf_counter() - started
        if elapsed >= min_seconds:
            return done / elapsed, done


def masks_iou(folder: Path, reference: Path) -> float | None:
    """Mean IoU over the `*_segmentation.png` masks both folders hold (None when none is shared)."""
    ious: list[float] = []
    for mask_path in sorted(reference.glob("*_segmentation.png")):
        other = folder / mask_path.name
        if not other.is_file():
            continue
        with Image.open(mask_path, formats=ALLOWED_FORMATS) as a, Image.open(other, formats=ALLOWED_FORMATS) as b:
            x, y = np.asarray(a) > 128, np.asarray(b) > 128
        if x.shape != y.shape:
            ious.append(0.0)
            continue
        union = int((x | y).sum())
        ious.append(1.0 if union == 0 else int((x & y).sum()) / union)
    return sum(ious) / len(ious) if ious else None
