"""Segment work items with the stage objects: decode ahead in threads, infer in batches, write in threads.

`run_pipeline` yields one `SegmentResult` per item, in input order, and never prints. Readers prepare
batch k+1 while the backend works on batch k and writers finish and write batch k-1; each queue holds
at most two batches, so memory stays flat however many images there are.

One item never harms the others: an exception while it is read, decoded, preprocessed, post-processed, upsampled
or written becomes its own failed result (an exception dermseg did not expect: kind `internal`, with its
traceback), and the rest goes on. Where a batch stage fails on an unexpected exception, the batch is run again one
item at a time, so that only the item that caused it fails. Only what is no item's fault ends the run: the
backend failing (InferenceError) and the disk (OutputWriteError).
"""

from __future__ import annotations

import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.masks import lesion_fraction
from ..core.quality import MaskQuality
from ..core.stages import HostStages, Prepared
from ..core.work_item import WorkItem
from ..defaults import MAX_BATCH_SIZE, MAX_THREADS
from ..errors import INTERNAL_KIND, DermsegError, InputImageError, UserError, internal_reason
from ..files.manifest import STATUS_FAILED, STATUS_OK, STATUS_SKIPPED
from ..files.outputs import write_outputs
from .results import SegmentResult

NO_LESION_NOTE = "no lesion found (empty mask)"


@dataclass(frozen=True)
class RunOptions:
    """`keep_masks`: return each mask array in its result (besides writing it where the item says)."""

    batch_size: int = 4
    overwrite: bool = False
    io_threads: int = 4
    keep_masks: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= MAX_BATCH_SIZE:
            raise UserError(f"batch size {self.batch_size}: must be from 1 to {MAX_BATCH_SIZE}")
        if not 1 <= self.io_threads <= MAX_THREADS:
            raise UserError(f"io threads {self.io_threads}: must be from 1 to {MAX_THREADS}")


@dataclass(frozen=True)
class _Finished:
    fraction: float
    seconds: float
    mask: np.ndarray | None
    upsample_seconds: float
    quality: MaskQuality | None


def finish_item(stages: HostStages, entry: Prepared, mask: Any, keep_mask: bool) -> _Finished:
    """Writer thread: the mask at the displayed size, its lesion fraction, and the files the item asks for."""
    start = time.perf_counter()
    stages.wait_for_mask(entry, mask)  # on CUDA: its copy to the host, and whether its logits were finite
    full = stages.finish_mask(mask, entry.size_hw)
    quality = stages.mask_quality(entry)
    upsampled = time.perf_counter()
    overlay = stages.overlay_pixels(entry) if stages.overlay and entry.item.overlay_path is not None else None
    review = (f"review: predicted Jaccard {quality.predicted_jaccard:.2f}" if quality is not None and quality.review
              else None)
    write_outputs(entry.item, full, overlay, review)
    kept = full if keep_mask else None
    return _Finished(lesion_fraction(full), time.perf_counter() - start, kept, upsampled - start, quality)


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
    for item in pending:
        ahead.append(pool.submit(stages.prepare, item))
        if len(ahead) >= 2 * batch_size:
            break
    while ahead:
        result = ahead.popleft().result()
        next_item = next(pending, None)
        if next_item is not None:
            ahead.append(pool.submit(stages.prepare, next_item))
        yield result


_InFlight = deque[tuple[Prepared, float, Future[_Finished] | None]]


def already_done(item: WorkItem, overwrite: bool) -> bool:
    """An item whose mask exists is skipped unless `overwrite` (how reruns finish what a killed run left)."""
    return not overwrite and item.mask_path is not None and item.mask_path.exists()


def partition_existing(items: Sequence[WorkItem], overwrite: bool) -> tuple[list[int], list[int]]:
    """The positions of the items to skip (their mask exists, `already_done`) and of those to segment, in input
    order: what a local run and a Ray run both start from."""
    skipped: list[int] = []
    todo: list[int] = []
    for position, item in enumerate(items):
        (skipped if already_done(item, overwrite) else todo).append(position)
    return skipped, todo


def run_pipeline(
    stages: HostStages,
    items: Iterable[WorkItem],
    options: RunOptions,
    should_stop: Callable[[], bool] = lambda: False,
) -> Iterator[SegmentResult]:
    """Segment every item, in input order; existing masks are skipped unless `overwrite`; bad inputs become
    failed results.

    `should_stop` is asked before each batch: once it says yes, the batches already inferred are written
    and the rest is left untouched (no result for them).
    """
    ordered = list(items)
    skipped, todo = partition_existing(ordered, options.overwrite)
    processed = _segment(stages, [ordered[position] for position in todo], options, should_stop)
    skipped_positions = set(skipped)
    for position, item in enumerate(ordered):
        if position in skipped_positions:
            yield SegmentResult(item, STATUS_SKIPPED)
            continue
        result = next(processed, None)
        if result is None:
            return
        yield result
    for _ in processed:  # none left: this closes the thread pools
        pass


def _segment(
    stages: HostStages, todo: list[WorkItem], options: RunOptions, should_stop: Callable[[], bool]
) -> Iterator[SegmentResult]:
    with ThreadPoolExecutor(options.io_threads, thread_name_prefix="dermseg-read") as readers, \
            ThreadPoolExecutor(options.io_threads, thread_name_prefix="dermseg-write") as writers:
        in_flight: _InFlight = deque()
        for batch in _batches(_prefetch(readers, todo, stages, options.batch_size), options.batch_size):
            if should_stop():
                readers.shutdown(wait=False, cancel_futures=True)
                break
            start = time.perf_counter()
            mask_of = _masks_of_batch(stages, batch)
            share = (time.perf_counter() - start) / max(1, len(mask_of))
            yield from _drain(in_flight)
            for entry in batch:  # failed entries wait in the queue too, so that results keep the input order
                mask = mask_of.get(id(entry))
                future = None if mask is None else writers.submit(finish_item, stages, entry, mask, options.keep_masks)
                in_flight.append((entry, share, future))
        yield from _drain(in_flight)


def _masks_of_batch(stages: HostStages, batch: list[Prepared]) -> dict[int, Any]:
    """The batch stages (decode_batch, batch_inputs, infer, postprocess) for `batch`: the network-size mask of each
    entry that has one, by `id(entry)`. An unexpected exception is retried one entry at a time, and the entry alone
    that still raises fails (`internal`); a DermsegError (the backend's InferenceError) ends the run."""
    try:
        return _run_batch_stages(stages, batch)
    except DermsegError:
        raise
    except Exception as exc:
        if len(batch) == 1:
            batch[0].fail_internal(exc)
            return {}
    masks: dict[int, Any] = {}
    for entry in batch:
        masks |= _masks_of_batch(stages, [entry])
    return masks


def _run_batch_stages(stages: HostStages, batch: list[Prepared]) -> dict[int, Any]:
    start = time.perf_counter()
    stages.decode_batch(batch)
    decoded = time.perf_counter()
    inputs, good = stages.batch_inputs(batch)
    batched = time.perf_counter()
    logits = stages.infer(inputs) if good else None
    inferred = time.perf_counter()
    masks = stages.postprocess(logits, good) if logits is not None else []
    for entry in good:
        seconds = entry.stage_seconds
        seconds["decode"] = seconds.get("decode", 0.0) + (decoded - start) / len(good)
        seconds["preprocess"] = seconds.get("preprocess", 0.0) + (batched - decoded) / len(good)
        seconds["inference"] = (inferred - batched) / len(good)
        seconds["postprocess"] = (time.perf_counter() - inferred) / len(good)
    return {id(entry): mask for entry, mask in zip(good, masks) if mask is not None}


def _drain(in_flight: _InFlight) -> Iterator[SegmentResult]:
    """Results of the writes queued so far (keeps one batch of writes running behind inference)."""
    while in_flight:
        entry, share, future = in_flight.popleft()
        if future is None:
            yield SegmentResult(entry.item, STATUS_FAILED, entry.seconds, error=entry.error or "was not segmented",
                                error_kind=entry.error_kind or InputImageError.kind, traceback=entry.traceback)
            continue
        try:
            finished = future.result()  # an OutputWriteError ends the run: the disk is the problem
        except InputImageError as exc:  # non-finite logits (CUDA), an output folder gone, an overlay's decode
            yield SegmentResult(entry.item, STATUS_FAILED, entry.seconds, error=exc.reason, error_kind=exc.kind)
            continue
        except DermsegError:
            raise
        except Exception as exc:  # this item's upsampling, overlay or encoding failed unexpectedly: it alone fails
            yield SegmentResult(entry.item, STATUS_FAILED, entry.seconds, error=internal_reason(exc),
                                error_kind=INTERNAL_KIND, traceback="".join(traceback.format_exception(exc)))
            continue
        if finished.fraction == 0.0:
            entry.notes.append(NO_LESION_NOTE)
        note = "; ".join(entry.notes) or None
        stage_seconds = dict(entry.stage_seconds)
        stage_seconds["postprocess"] = stage_seconds.get("postprocess", 0.0) + finished.upsample_seconds
        stage_seconds["write"] = finished.seconds - finished.upsample_seconds
        yield SegmentResult(entry.item, STATUS_OK, entry.seconds + share + finished.seconds, finished.fraction,
                            finished.mask, note=note, stage_seconds=stage_seconds, quality=finished.quality)
