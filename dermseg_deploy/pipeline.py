"""The `dermseg-run` pipeline: decode ahead in threads, infer in batches, encode and write in threads.

`run_pipeline` yields one `ItemResult` per work item, in input order; it never prints.
"""

from __future__ import annotations

import csv
import io
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch

from .atomic import atomic_write_bytes
from .decode import DEFAULT_MAX_PIXELS
from .errors import InputImageError, OutputWriteError
from .inputs import WorkItem
from .postprocess import encode_png, lesion_fraction, render_overlay
from .segmenter import Segmenter
from .stages import HostStages, Prepared, StageConfig, make_stages

STATUS_OK, STATUS_SKIPPED, STATUS_FAILED = "ok", "skipped", "failed"
MANIFEST_NAME = "manifest.csv"
MANIFEST_FIELDS = ("file", "status", "mask_path", "lesion_area_fraction", "seconds", "error")


@dataclass(frozen=True)
class ItemResult:
    item: WorkItem
    status: str
    seconds: float = 0.0
    lesion_area_fraction: float | None = None
    error: str | None = None
    """For a failed item, why; for a segmented one, a note (e.g. the GPU decoder refused it)."""


@dataclass(frozen=True)
class RunOptions:
    batch_size: int = 4
    overwrite: bool = False
    overlay: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS
    io_threads: int = 4
    draft: bool = True
    """Decode large JPEGs at a reduced DCT scale on the CPU (mask IoU 0.996 against full decoding on ISIC 2017
    full-resolution images at 512 px: benchmarks/results/cpu-pipeline-2026-11-26/)."""


def _write(item: WorkItem, image: torch.Tensor | None, mask: torch.Tensor, size_hw: tuple[int, int],
           stages: HostStages) -> tuple[float, float]:
    """Upsample (CPU stages), encode and atomically write the mask (and overlay); returns (fraction, seconds)."""
    start = time.perf_counter()
    mask = stages.finish_mask(mask, size_hw)
    fraction = lesion_fraction(mask)
    try:
        atomic_write_bytes(item.mask_path, encode_png(mask))
        if image is not None:
            atomic_write_bytes(item.overlay_path, render_overlay(image, mask))
    except OSError as exc:
        raise OutputWriteError(f"{item.mask_path}: cannot write ({exc.strerror or exc})") from exc
    return fraction, time.perf_counter() - start


def _batches(prepared: Iterator[Prepared], batch_size: int) -> Iterator[list[Prepared]]:
    batch: list[Prepared] = []
    for entry in prepared:
        batch.append(entry)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def _prefetch(pool: ThreadPoolExecutor, items: list[WorkItem], stages: HostStages, batch_size: int) -> Iterator[Prepared]:
    """Prepare in the pool, at most two batches ahead of the consumer, in input order (a bounded queue)."""
    ahead: deque[Future[Prepared]] = deque()
    pending = iter(items)
    limit = 2 * batch_size
    for item in pending:
        ahead.append(pool.submit(stages.prepare, item))
        if len(ahead) >= limit:
            break
    while ahead:
        result = ahead.popleft().result()
        next_item = next(pending, None)
        if next_item is not None:
            ahead.append(pool.submit(stages.prepare, next_item))
        yield result


def stages_for(segmenter: Segmenter, options: RunOptions) -> HostStages:
    backend = segmenter.backend
    config = StageConfig(segmenter.metadata, backend.device, backend.input_dtype, options.max_pixels, options.overlay,
                         options.draft)
    return make_stages(config)


_InFlight = deque[tuple[Prepared, float, Future[tuple[float, float]]]]


def run_pipeline(
    segmenter: Segmenter,
    items: Iterable[WorkItem],
    options: RunOptions,
    should_stop: Callable[[], bool] = lambda: False,
) -> Iterator[ItemResult]:
    """Segment every item; existing masks are skipped unless `overwrite`; bad inputs become failed results.

    Readers prepare batch k+1 while the backend works on batch k and writers encode batch k-1; each queue
    holds at most two batches, so memory stays flat however many images there are. `should_stop` is asked
    before each batch: once it says yes, the batches already inferred are written and the rest is left
    untouched (no result for them).
    """
    todo: list[WorkItem] = []
    for item in items:
        if not options.overwrite and item.mask_path.exists():
            yield ItemResult(item, STATUS_SKIPPED)
        else:
            todo.append(item)
    stages = stages_for(segmenter, options)
    with ThreadPoolExecutor(options.io_threads, thread_name_prefix="dermseg-read") as readers, \
            ThreadPoolExecutor(options.io_threads, thread_name_prefix="dermseg-write") as writers:
        in_flight: _InFlight = deque()
        for batch in _batches(_prefetch(readers, todo, stages, options.batch_size), options.batch_size):
            if should_stop():
                readers.shutdown(wait=False, cancel_futures=True)
                break
            start = time.perf_counter()
            inputs, good = stages.to_batch(batch)
            masks = stages.to_masks(segmenter.backend.infer(inputs), good) if good else []
            share = (time.perf_counter() - start) / max(1, len(good))
            mask_of = {id(entry): mask for entry, mask in zip(good, masks)}
            yield from _drain(in_flight)
            for entry in batch:
                if id(entry) not in mask_of:
                    yield ItemResult(entry.item, STATUS_FAILED, entry.seconds, error=entry.error or "was not segmented")
                    continue
                future = writers.submit(_write, entry.item, entry.overlay_image, mask_of[id(entry)], entry.size_hw, stages)
                in_flight.append((entry, share, future))
        yield from _drain(in_flight)


def _drain(in_flight: _InFlight) -> Iterator[ItemResult]:
    """Results of the writes queued so far (keeps one batch of writes running behind inference)."""
    while in_flight:
        entry, share, future = in_flight.popleft()
        fraction, write_seconds = future.result()  # an OutputWriteError ends the run: the disk is the problem
        note = "; ".join(entry.notes) or None
        yield ItemResult(entry.item, STATUS_OK, entry.seconds + share + write_seconds, fraction, note)


def write_manifest(
    path: Path, results: list[ItemResult], input_errors: Iterable[InputImageError] = (), failures_only: bool = False
) -> Path:
    """Write a CSV (file, status, mask path, lesion area fraction, seconds, error) atomically.

    `input_errors` are inputs that failed before segmentation (unlistable folders, clashing outputs);
    `failures_only` leaves out the images that were segmented or skipped (the `--report` file).
    """
    if failures_only:
        results = [r for r in results if r.status == STATUS_FAILED]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(MANIFEST_FIELDS)
    for error in input_errors:
        writer.writerow([str(error.path), STATUS_FAILED, "", "", "0.0000", error.reason])
    for r in results:
        fraction = "" if r.lesion_area_fraction is None else f"{r.lesion_area_fraction:.6f}"
        mask = str(r.item.mask_path) if r.status != STATUS_FAILED else ""
        writer.writerow([str(r.item.source), r.status, mask, fraction, f"{r.seconds:.4f}", r.error or ""])
    atomic_write_bytes(path, buffer.getvalue().encode("utf-8"))
    return path
