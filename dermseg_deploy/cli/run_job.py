"""What `dermseg-run` does once its command line is parsed: plan the inputs, segment (here or on Ray), keep
the manifest, and end with a summary and the exit code."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import click
from tqdm import tqdm

from ..backends import BackendOptions, open_backend
from ..core.decode import IMAGE_SUFFIXES
from ..core.lesion_regions import postprocess_engine
from ..core.mask_options import MaskOptions
from ..core.stages import STAGE_NAMES
from ..core.work_item import WorkItem
from ..defaults import DEFAULT_REVIEW_BELOW
from ..errors import InputImageError, OutputWriteError, UserError
from ..files.inputs import InputPlan, plan_inputs
from ..files.manifest import (
    ENCODING,
    ENCODING_ERRORS,
    MANIFEST_NAME,
    REVIEW_LIST_NAME,
    STATUS_FAILED,
    STATUS_OK,
    STATUS_SKIPPED,
    ManifestRow,
    mark_missing_masks,
    merge_rerun,
    read_manifest,
    write_manifest,
)
from ..files.mask_files import lesion_fraction_of_file
from ..files.outputs import make_output_folders
from ..model.sizes import require_valid_size
from ..segment.pipeline import NO_LESION_NOTE, RunOptions, partition_existing
from ..segment.segmenter import Segmenter
from ..util.atomic import atomic_write_bytes, remove_stale_temp_files
from ..util.devices import Device, default_batch_size, resolve_device
from ..util.printable import printable
from ..util.stop_signals import EXIT_INTERRUPTED, StopFlag
from .common import EXIT_INTERNAL, EXIT_OK, EXIT_SOME_INPUTS_FAILED, EXIT_USAGE, INTERNAL_HINT, error_line


@dataclass(frozen=True)
class RunRequest:
    """`dermseg-run`'s options, as parsed."""

    model_path: Path
    inputs: list[Path]
    out_dir: Path
    size_px: int | None
    batch_size: int | None
    """None: `default_batch_size` of the device."""
    device: str
    threshold: float | None
    overwrite: bool
    overlay: bool
    max_pixels: int
    io_threads: int
    threads: int | None
    report_path: Path | None
    provider: str
    trust_plan: bool
    precision: str
    channels_last: bool
    cuda_graphs: bool
    compile_model: bool
    full_decode: bool
    ray: bool
    ray_address: str | None
    ray_actors: int | None
    quiet: bool
    mask_options: MaskOptions = MaskOptions()
    debug: bool = False
    """Print the traceback of each internal error (`--debug`, or DERMSEG_DEBUG=1)."""
    review_below: float = DEFAULT_REVIEW_BELOW

    def backend_options(self) -> BackendOptions:
        return BackendOptions(self.provider, self.trust_plan, self.precision, self.channels_last, self.cuda_graphs,
                              self.threads, self.compile_model)

    @property
    def device_flag(self) -> str:
        """`--device`, with `auto` meaning CUDA for the GPU providers (without a GPU: an unavailable backend, exit 4)."""
        return "cuda" if self.device == "auto" and self.provider in ("cuda", "tensorrt") else self.device


@dataclass
class StageTotals:
    """Seconds per stage summed over the segmented images, for the closing line."""

    seconds: dict[str, float] = field(default_factory=dict)
    images: int = 0

    def add(self, stage_seconds: dict[str, float] | None) -> None:
        if stage_seconds:
            self.images += 1
            for stage, value in stage_seconds.items():
                self.seconds[stage] = self.seconds.get(stage, 0.0) + value

    def describe(self) -> str:
        """`per image: read 0.1 ms, decode 12.1 ms, ...` (empty when nothing was timed here, as on Ray)."""
        if not self.images:
            return ""
        parts = [f"{stage} {1000 * self.seconds.get(stage, 0.0) / self.images:.1f} ms" for stage in STAGE_NAMES]
        return "per image: " + ", ".join(parts)


@dataclass
class Segmented:
    """What a run produced: manifest rows in input order (those that finished), the per-stage totals and the
    engine's description."""

    rows: list[ManifestRow] = field(default_factory=list)
    totals: StageTotals = field(default_factory=StageTotals)
    engine: str = ""
    quality: str = ""
    """How the predicted Jaccard was computed (`QualityScorer.describe`)."""


Report = Callable[[ManifestRow, "str | None"], None]
"""Called with each row as it comes, and the traceback of an internal failure (where there is one)."""


def run_job(request: RunRequest) -> None:
    """Segment, write the manifest (merged with an earlier run's), print the summary, exit with the code."""
    backend_options = _check_request(request)
    if request.ray:
        from ..scale.ray_cluster import import_ray

        import_ray()  # where Ray is missing, say so before any folder is made
    device = None if request.ray else resolve_device(request.device_flag)
    plan = _plan(request)
    stop = StopFlag()
    segmented = Segmented()
    bar = tqdm(total=len(plan.items), unit="img", disable=request.quiet, file=sys.stderr, dynamic_ncols=True)

    def report(row: ManifestRow, trace: str | None = None) -> None:
        if row.status == STATUS_FAILED:
            tqdm.write(f"error: {printable(row.file)}: {printable(row.error)}", file=sys.stderr)
            if trace and request.debug:
                tqdm.write(trace.rstrip("\n"), file=sys.stderr)
        elif row.note:
            tqdm.write(f"note: {printable(row.file)}: {printable(row.note)}", file=sys.stderr)
        bar.update(1)

    start = time.perf_counter()
    disk_error: OutputWriteError | None = None
    with stop.installed(lambda name: click.echo(f"\n{name}: stopping after the current batch ({name} or Ctrl-C again "
                                                "to stop at once)", err=True)):
        try:
            if device is None:
                _segment_on_ray(plan.items, request, backend_options, report, stop.is_set, segmented)
            else:
                _segment_here(plan.items, request, backend_options, device, report, stop.is_set, segmented)
        except OutputWriteError as exc:  # the disk, not an image: the run ends, with its manifest and summary
            disk_error = exc
        finally:
            bar.close()
            elapsed = time.perf_counter() - start
            segmented.rows = _mark_missing_masks(segmented.rows)
            manifest = _write_reports(request.out_dir, request.report_path, segmented.rows, plan.errors)
    failed = _summarise(request, plan, segmented, elapsed, manifest)
    if disk_error is not None:
        error_line(f"{disk_error}; the run stopped there (the masks written so far are in the manifest)")
        sys.exit(EXIT_USAGE)
    if stop.is_set() or len(segmented.rows) < len(plan.items):
        left = len(plan.items) - len(segmented.rows)
        what = "not reported back (actors may have finished some: their masks exist)" if request.ray else "not started"
        click.echo(f"interrupted: {left} image(s) {what}; run the same command again to finish them", err=True)
        sys.exit(stop.exit_code if stop.is_set() else EXIT_INTERRUPTED)
    internal = sum(row.internal for row in segmented.rows)
    if internal:
        error_line(f"{internal} image(s) failed on an internal error ({INTERNAL_HINT}); the others are done")
        sys.exit(EXIT_INTERNAL)
    sys.exit(EXIT_SOME_INPUTS_FAILED if failed else EXIT_OK)


def _check_request(request: RunRequest) -> BackendOptions:
    if not request.model_path.exists():
        raise UserError(f"{request.model_path}: model file not found")
    if (request.ray_address is not None or request.ray_actors is not None) and not request.ray:
        raise UserError("--ray-address and --ray-actors go with --ray")
    if request.size_px is not None:
        require_valid_size(request.size_px)
    options = request.backend_options()
    options.check_applies_to(request.model_path.suffix)
    return options


def _plan(request: RunRequest) -> InputPlan:
    """The work items; the output folders made, stale temp files removed, and the notes and input errors said."""
    plan = plan_inputs(list(request.inputs), request.out_dir)
    if not plan.items and not plan.errors:
        suffixes = " ".join(sorted(IMAGE_SUFFIXES))
        passed = plan.passed_over_line()
        raise UserError(f"no images found in {', '.join(map(str, request.inputs))} (looked for {suffixes})"
                        + (f"; {passed}" if passed else ""))
    try:
        request.out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputWriteError(f"{request.out_dir}: cannot create the output folder ({exc.strerror or exc})") from exc
    make_output_folders(plan.items)
    removed = remove_stale_temp_files(request.out_dir)
    if removed:
        click.echo(f"removed {len(removed)} temp file(s) left in {request.out_dir} by an interrupted run", err=True)
    for line in ([plan.passed_over_line()] if plan.passed_over else []) + plan.notes:
        click.echo(f"note: {printable(line or '')}", err=True)
    for error in plan.errors:
        click.echo(f"error: {printable(str(error))}", err=True)
    return plan


def _segment_here(items: list[WorkItem], request: RunRequest, options: BackendOptions, device: Device, report: Report,
                  should_stop: Callable[[], bool], segmented: Segmented) -> None:
    """Segment in this process; rows are added to `segmented` as they come, so an interruption keeps them."""
    backend = open_backend(request.model_path, device, request.size_px, options)
    if request.device_flag == "auto":
        click.echo(f"device: auto picked {device}", err=True)
    if backend.notice:
        click.echo(printable(backend.notice), err=True)
    _announce_mask_options(request.mask_options, device)
    with Segmenter(backend, request.threshold, request.max_pixels, not request.full_decode,
                   request.mask_options, request.review_below) as segmenter:
        segmented.quality = segmenter.quality.describe()
        run_options = RunOptions(request.batch_size or default_batch_size(device), request.overwrite, request.io_threads)
        for result in segmenter.segment_items(items, run_options, request.overlay, should_stop):
            segmented.rows.append(result.manifest_row())
            segmented.totals.add(result.stage_seconds)
            report(segmented.rows[-1], result.traceback)
        segmented.engine = segmenter.backend.describe()
        compile_seconds = getattr(segmenter.backend, "compile_seconds", None)
        if compile_seconds is not None:
            segmented.engine += f" (torch.compile: first batch {compile_seconds:.1f} s)"


def _segment_on_ray(items: list[WorkItem], request: RunRequest, options: BackendOptions, report: Report,
                    should_stop: Callable[[], bool], segmented: Segmented) -> None:
    """Skip existing masks here (as a local run does), send the rest to Ray; rows are kept in input order (those that
    finished)."""
    from ..scale.ray_batch import ActorSettings, run_on_ray
    from ..scale.segmenter_spec import SegmenterSpec

    model = SegmenterSpec(str(request.model_path), request.device, request.size_px, request.threshold, options,
                          request.max_pixels, not request.full_decode, request.mask_options)
    _announce_mask_options(request.mask_options, None)
    settings = ActorSettings(model, request.overlay, request.batch_size or default_batch_size(None))
    skipped, todo = partition_existing(items, request.overwrite)
    done = {position: ManifestRow(str(items[position].source), STATUS_SKIPPED, str(items[position].mask_path))
            for position in skipped}
    for row in done.values():
        report(row, None)
    try:
        run = run_on_ray([items[position] for position in todo], settings, request.ray_address, request.ray_actors,
                         request.threads, lambda row: report(row, None), should_stop)
        done.update({todo[index]: row for index, row in run.rows.items()})
        segmented.engine = (f"{run.backend or model.model_path} x {run.plan.describe()}" if run.plan
                            else "no Ray run (nothing to do)")
    finally:
        segmented.rows = [done[position] for position in range(len(items)) if position in done]


def _announce_mask_options(options: MaskOptions, device: Device | None) -> None:
    """One line when the masks are not the plain model's: what is on, and where post-processing runs."""
    if options.plain:
        return
    line = f"masks: {options.describe()}"
    if options.tta != "none":
        line += f" ({options.views} inferences per image)"
    if options.postprocess and device is not None:
        line += f"; post-processing with {postprocess_engine(device)}"
    click.echo(line, err=True)


def _summarise(request: RunRequest, plan: InputPlan, segmented: Segmented, elapsed: float, manifest: Path) -> int:
    """The closing lines: counts and rate, time per stage, and the images where no lesion was found; returns the
    number of failed inputs."""
    rows = segmented.rows
    done = sum(r.status == STATUS_OK for r in rows)
    skipped = sum(r.status == STATUS_SKIPPED for r in rows)
    failed = sum(r.status == STATUS_FAILED for r in rows) + len(plan.errors)
    rate = done / elapsed if elapsed > 0 else 0.0
    click.echo(
        f"{done} segmented, {skipped} skipped (mask exists), {failed} failed in {elapsed:.1f} s "
        f"({rate:.2f} images/s) with {segmented.engine}; masks in {request.out_dir}/, manifest {manifest}",
        err=True,
    )
    if segmented.totals.images:
        click.echo(segmented.totals.describe(), err=True)
    empty = sum(r.status == STATUS_OK and NO_LESION_NOTE in r.note for r in rows)
    if empty:
        click.echo(f"no lesion found in {empty} image(s) (empty masks; note \"{NO_LESION_NOTE}\" in the manifest)",
                   err=True)
    scored = [r for r in rows if r.status == STATUS_OK and r.predicted_jaccard is not None]
    if scored:
        flagged = sum(r.review == "yes" for r in scored)
        click.echo(f"review: {flagged} of {len(scored)} mask(s) segmented now predicted below Jaccard "
                   f"{request.review_below:g} ({segmented.quality or 'as the manifest records'}): review=yes in {manifest}, "
                   f"and every flagged mask of the folder listed in {request.out_dir / REVIEW_LIST_NAME}", err=True)
    return failed


def _write_review_list(out_dir: Path, rows: list[ManifestRow]) -> None:
    """review.txt beside the manifest: the inputs whose masks the manifest flags for review, one per line."""
    lines = "".join(f"{row.file}\n" for row in rows if row.status != STATUS_FAILED and row.review == "yes")
    atomic_write_bytes(out_dir / REVIEW_LIST_NAME, lines.encode(ENCODING, ENCODING_ERRORS), make_folder=False)


def _mark_missing_masks(rows: list[ManifestRow]) -> list[ManifestRow]:
    """Rows whose mask was deleted during the run become failures, each with its error line."""
    checked = mark_missing_masks(rows)
    for before, after in zip(rows, checked):
        if after.status != before.status:
            click.echo(f"error: {printable(after.file)}: {printable(after.error)}", err=True)
    return checked


def _earlier_rows(manifest: Path) -> list[ManifestRow]:
    """The rows an earlier run left in `manifest` (none when there is no readable one: a note says so)."""
    if not manifest.is_file():
        return []
    try:
        return read_manifest(manifest)
    except UserError as exc:
        click.echo(f"note: {printable(str(exc))}; it is replaced", err=True)
        return []


def _write_reports(
    out_dir: Path, report_path: Path | None, results: list[ManifestRow], input_errors: list[InputImageError]
) -> Path:
    """The manifest, merged with an earlier run's (and the failures report); a failure to write them is one error
    line, not a second traceback."""
    manifest = out_dir / MANIFEST_NAME
    current = [*(ManifestRow.input_error(error) for error in input_errors), *results]
    rows = merge_rerun(_earlier_rows(manifest), current, lesion_fraction_of_file)
    try:
        write_manifest(manifest, rows)
        _write_review_list(out_dir, rows)
        if report_path is not None:
            write_manifest(report_path, current, failures_only=True)
    except OSError as exc:
        click.echo(f"error: cannot write {manifest} or the report ({exc.strerror or exc})", err=True)
    return manifest
