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
from .decode import DEFAULT_MAX_PIXELS, read_image
from .errors import InputImageError, OutputWriteError
from .inputs import WorkItem
from .postprocess import encode_png, lesion_fraction, render_overlay
from .segmenter import Segmenter

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


@dataclass(frozen=True)
class _Decoded:
    item: WorkItem
    image: torch.Tensor | None
    seconds: float
    error: str | None


@dataclass(frozen=True)
class RunOptions:
    batch_size: int = 4
    overwrite: bool = False
    overlay: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS
    io_threads: int = 4


def _decode(item: WorkItem, max_pixels: int) -> _Decoded:
    start = time.perf_counter()
    try:
        image = read_image(item.source, max_pixels)
    except InputImageError as exc:
        return _Decoded(item, None, time.perf_counter() - start, exc.reason)
    return _Decoded(item, image, time.perf_counter() - start, None)


def _write(item: WorkItem, image: torch.Tensor, mask: torch.Tensor, overlay: bool) -> tuple[float, float]:
    """Encode and atomically write the mask (and overlay); returns (lesion fraction, seconds)."""
    start = time.perf_counter()
    mask = mask.cpu()
    fraction = lesion_fraction(mask)
    try:
        atomic_write_bytes(item.mask_path, encode_png(mask))
        if overlay:
            atomic_write_bytes(item.overlay_path, render_overlay(image, mask))
    except OSError as exc:
        raise OutputWriteError(f"{item.mask_path}: cannot write ({exc.strerror or exc})") from exc
    return fraction, time.perf_counter() - start


def _batches(decoded: Iterator[_Decoded], batch_size: int) -> Iterator[list[_Decoded]]:
    batch: list[_Decoded] = []
    for entry in decoded:
        batch.append(entry)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def _prefetch(pool: ThreadPoolExecutor, items: list[WorkItem], options: RunOptions) -> Iterator[_Decoded]:
    """Decode in the pool, at most two batches ahead of the consumer, in input order."""
    ahead: deque[Future[_Decoded]] = deque()
    pending = iter(items)
    limit = 2 * options.batch_size
    for item in pending:
        ahead.append(pool.submit(_decode, item, options.max_pixels))
        if len(ahead) >= limit:
            break
    while ahead:
        result = ahead.popleft().result()
        next_item = next(pending, None)
        if next_item is not None:
            ahead.append(pool.submit(_decode, next_item, options.max_pixels))
        yield result


def run_pipeline(
    segmenter: Segmenter,
    items: Iterable[WorkItem],
    options: RunOptions,
    should_stop: Callable[[], bool] = lambda: False,
) -> Iterator[ItemResult]:
    """Segment every item; existing masks are skipped unless `overwrite`; bad inputs become failed results.

    `should_stop` is asked before each batch: once it says yes, the batches already inferred are written
    and the rest is left untouched (no result for them).
    """
    todo: list[WorkItem] = []
    for item in items:
        if not options.overwrite and item.mask_path.exists():
            yield ItemResult(item, STATUS_SKIPPED)
        else:
            todo.append(item)
    with ThreadPoolExecutor(options.io_threads, thread_name_prefix="dermseg-decode") as readers, \
            ThreadPoolExecutor(options.io_threads, thread_name_prefix="dermseg-write") as writers:
        in_flight: deque[tuple[_Decoded, float, Future[tuple[float, float]]]] = deque()
        for batch in _batches(_prefetch(readers, todo, options), options.batch_size):
            if should_stop():
                readers.shutdown(wait=False, cancel_futures=True)
                break
            good = [entry for entry in batch if entry.image is not None]
            start = time.perf_counter()
            masks = segmenter.predict_masks([entry.image for entry in good if entry.image is not None])
            share = (time.perf_counter() - start) / max(1, len(good))
            mask_of = {id(entry): mask for entry, mask in zip(good, masks)}
            yield from _drain(in_flight)
            for entry in batch:
                if entry.image is None:
                    yield ItemResult(entry.item, STATUS_FAILED, entry.seconds, error=entry.error)
                    continue
                future = writers.submit(_write, entry.item, entry.image, mask_of[id(entry)], options.overlay)
                in_flight.append((entry, share, future))
        yield from _drain(in_flight)


def _drain(in_flight: deque[tuple[_Decoded, float, Future[tuple[float, float]]]]) -> Iterator[ItemResult]:
    while in_flight:
        entry, share, future = in_flight.popleft()
        fraction, write_seconds = future.result()  # an OutputWriteError ends the run: the disk is the problem
        yield ItemResult(entry.item, STATUS_OK, entry.seconds + share + write_seconds, fraction)


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
