"""`dermseg-run --engine MODEL INPUT...`: masks for image files and folders."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import click
from tqdm import tqdm

from . import __version__
from .atomic import remove_stale_temp_files
from .backends import BackendOptions, open_backend
from .backends.options import ORT_PROVIDERS, TORCH_PRECISIONS
from .cli_common import EXIT_OK, EXIT_SOME_INPUTS_FAILED, handle_errors
from .decode import DEFAULT_MAX_PIXELS
from .devices import resolve_device
from .errors import InputImageError, OutputWriteError, UserError
from .inputs import WorkItem, plan_inputs
from .manifest import (
    MANIFEST_NAME,
    STATUS_FAILED,
    STATUS_OK,
    STATUS_SKIPPED,
    ManifestRow,
    mark_missing_masks,
    write_manifest,
)
from .outputs import make_output_folders
from .pipeline import RunOptions, already_done
from .scale.ray_batch import ActorSettings, run_on_ray
from .scale.segmenter_spec import SegmenterSpec
from .segmenter import Segmenter
from .sizes import require_valid_size
from .stop_signals import EXIT_INTERRUPTED, StopFlag


def _check_threshold(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    if value is not None and not 0.0 < value < 1.0:
        raise click.BadParameter("must lie strictly between 0 and 1 (a probability)")
    return value


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dermseg-run")
@click.option("--engine", "model_path", required=True, type=click.Path(path_type=Path),
              help="Model file: .pt (PyTorch), .onnx (ONNX Runtime) or .plan/.engine (TensorRT).")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", "out_dir", default=Path("masks"), show_default=True, type=click.Path(path_type=Path),
              help="Output folder; masks mirror each input folder's tree.")
@click.option("--size", "size_px", type=int, default=None,
              help="Square input side (multiple of 32). Any size for .pt; must match an exported model's size.")
@click.option("--batch-size", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--threshold", type=float, default=None, callback=_check_threshold,
              help="Lesion probability threshold (default: the model's, usually 0.5).")
@click.option("--overwrite", is_flag=True, help="Segment again even where a mask already exists.")
@click.option("--overlay", is_flag=True, help="Also write <name>_overlay.jpg with the mask outline over the image.")
@click.option("--max-pixels", type=click.IntRange(min=1), default=DEFAULT_MAX_PIXELS, show_default=True,
              help="Refuse images with more pixels than this (decompression bombs).")
@click.option("--io-threads", type=click.IntRange(min=1), default=4, show_default=True,
              help="Threads that read/decode inputs and encode/write outputs.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="Intra-op threads of ONNX Runtime or PyTorch (default: theirs, one per core).")
@click.option("--report", "report_path", type=click.Path(path_type=Path), default=None,
              help="Also write the failed inputs alone, with their reasons, to this CSV.")
@click.option("--provider", type=click.Choice(ORT_PROVIDERS), default="auto", show_default=True,
              help=".onnx: ONNX Runtime execution provider (auto: CPU on the CPU, CUDA on a GPU); tensorrt wants "
                   "the .fp16.onnx file.")
@click.option("--trust-plan", is_flag=True,
              help=".plan: allow a version-compatible plan built by an older TensorRT to run the host code it carries.")
@click.option("--precision", type=click.Choice(TORCH_PRECISIONS), default="fp32", show_default=True,
              help=".pt: PyTorch precision.")
@click.option("--channels-last", is_flag=True, help=".pt: channels-last memory format (faster FP16 on CUDA).")
@click.option("--cuda-graphs", is_flag=True, help=".pt on CUDA: capture and replay a CUDA graph per batch shape.")
@click.option("--full-decode", is_flag=True,
              help="On the CPU, decode every JPEG at full size (default: libjpeg's reduced DCT scale where the input is "
                   "small). On CUDA, JPEGs are always decoded at full size on the GPU.")
@click.option("--ray", is_flag=True,
              help="Segment on a Ray cluster (Ray Data actors; pip install 'dermseg[ray]'): a local one sized to this "
                   "machine, or the one --ray-address names. The model file must be readable where the actors run.")
@click.option("--ray-address", default=None,
              help="With --ray: join this cluster (auto, ray://HOST:10001, or HOST:PORT) instead of starting one.")
@click.option("--ray-actors", type=click.IntRange(min=1), default=None,
              help="With --ray: actors (default: one per GPU, or the cluster's CPUs divided by --threads).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@handle_errors
def main(
    model_path: Path, inputs: tuple[Path, ...], out_dir: Path, size_px: int | None, batch_size: int, device: str,
    threshold: float | None, overwrite: bool, overlay: bool, max_pixels: int, io_threads: int, threads: int | None,
    report_path: Path | None, provider: str, trust_plan: bool, precision: str, channels_last: bool, cuda_graphs: bool,
    full_decode: bool, ray: bool, ray_address: str | None, ray_actors: int | None, quiet: bool,
) -> None:
    """Segment skin lesions in image files and folders (recursive); write <name>_segmentation.png masks.

    Ctrl-C or SIGTERM stops after the current batch, writes the manifest and reports what was done; run the
    same command again to finish (existing masks are skipped).

    Exit codes: 0 all done; 1 some inputs failed (the rest done); 2 usage, user or output error; 3 a check
    failed; 4 backend, device or precision unavailable; 130 interrupted (SIGINT), 143 terminated (SIGTERM);
    70 internal error.
    """
    if not model_path.exists():
        raise UserError(f"{model_path}: model file not found")
    if (ray_address is not None or ray_actors is not None) and not ray:
        raise UserError("--ray-address and --ray-actors go with --ray")
    if size_px is not None:
        require_valid_size(size_px)
    backend_options = BackendOptions(provider, trust_plan, precision, channels_last, cuda_graphs, threads)
    backend_options.check_applies_to(model_path.suffix)
    if device == "auto" and provider in ("cuda", "tensorrt"):
        device = "cuda"  # these providers run on a GPU: without one, that is an unavailable backend (exit 4)
    torch_device = None if ray else resolve_device(device)
    if device == "auto" and torch_device is not None:
        click.echo(f"device: auto picked {torch_device}", err=True)
    plan = plan_inputs(list(inputs), out_dir)
    if not plan.items and not plan.errors:
        raise UserError(f"no images found in {', '.join(map(str, inputs))} (looked for .jpg .jpeg .png .bmp .tif .tiff)")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputWriteError(f"{out_dir}: cannot create the output folder ({exc.strerror or exc})") from exc
    make_output_folders(plan.items)
    removed = remove_stale_temp_files(out_dir)
    if removed:
        click.echo(f"removed {len(removed)} temp file(s) left in {out_dir} by an interrupted run", err=True)
    for note in plan.notes:
        click.echo(f"note: {note}", err=True)
    for error in plan.errors:
        click.echo(f"error: {error}", err=True)
    stop = StopFlag()
    rows: list[ManifestRow] = []
    bar = tqdm(total=len(plan.items), unit="img", disable=quiet, file=sys.stderr, dynamic_ncols=True)

    def report(row: ManifestRow) -> None:
        if row.status == STATUS_FAILED:
            tqdm.write(f"error: {row.file}: {row.error}", file=sys.stderr)
        elif row.note:
            tqdm.write(f"note: {row.file}: {row.note}", file=sys.stderr)
        bar.update(1)

    start = time.perf_counter()
    with stop.installed(lambda name: click.echo(f"\n{name}: stopping after the current batch ({name} or Ctrl-C again "
                                                "to stop at once)", err=True)):
        try:
            if ray:
                model = SegmenterSpec(str(model_path), device, size_px, threshold, backend_options, max_pixels,
                                      not full_decode)
                settings = ActorSettings(model, overlay, batch_size)
                rows, engine = _segment_on_ray(plan.items, settings, overwrite, ray_address, ray_actors, threads, report,
                                               stop.is_set)
            else:
                assert torch_device is not None
                backend = open_backend(model_path, torch_device, size_px, backend_options)
                with Segmenter(backend, threshold, max_pixels, reduced_jpeg=not full_decode) as segmenter:
                    for result in segmenter.segment_items(plan.items, RunOptions(batch_size, overwrite, io_threads),
                                                          overlay, stop.is_set):
                        rows.append(result.manifest_row())
                        report(rows[-1])
                    engine = segmenter.backend.describe()
        finally:
            bar.close()
            elapsed = time.perf_counter() - start
            rows = _mark_missing_masks(rows)
            manifest = _write_reports(out_dir, report_path, rows, plan.errors)
    done = sum(r.status == STATUS_OK for r in rows)
    skipped = sum(r.status == STATUS_SKIPPED for r in rows)
    failed = sum(r.status == STATUS_FAILED for r in rows) + len(plan.errors)
    rate = done / elapsed if elapsed > 0 else 0.0
    click.echo(
        f"{done} segmented, {skipped} skipped (mask exists), {failed} failed in {elapsed:.1f} s "
        f"({rate:.2f} images/s) with {engine}; masks in {out_dir}/, manifest {manifest}",
        err=True,
    )
    if stop.is_set() or len(rows) < len(plan.items):
        left = len(plan.items) - len(rows)
        what = "not reported back (actors may have finished some: their masks exist)" if ray else "not started"
        click.echo(f"interrupted: {left} image(s) {what}; run the same command again to finish them", err=True)
        sys.exit(stop.exit_code if stop.is_set() else EXIT_INTERRUPTED)
    sys.exit(EXIT_SOME_INPUTS_FAILED if failed else EXIT_OK)


def _segment_on_ray(
    items: list[WorkItem], settings: ActorSettings, overwrite: bool, address: str | None, actors: int | None,
    threads: int | None, report: Callable[[ManifestRow], None], should_stop: Callable[[], bool],
) -> tuple[list[ManifestRow], str]:
    """Skip existing masks here, send the rest to Ray; the rows come back in input order (those that finished)."""
    skipped = {index: ManifestRow(str(item.source), STATUS_SKIPPED, str(item.mask_path))
               for index, item in enumerate(items) if already_done(item, overwrite)}
    for row in skipped.values():
        report(row)
    todo = [index for index in range(len(items)) if index not in skipped]
    run = run_on_ray([items[index] for index in todo], settings, address, actors, threads, report, should_stop)
    finished = {index: run.rows[position] for position, index in enumerate(todo) if position in run.rows}
    done = skipped | finished
    rows = [done[index] for index in range(len(items)) if index in done]
    engine = f"{run.backend or settings.model.model_path} x {run.plan.describe()}" if run.plan else "no Ray run (nothing to do)"
    return rows, engine


def _mark_missing_masks(rows: list[ManifestRow]) -> list[ManifestRow]:
    """Rows whose mask was deleted during the run become failures, each with its error line."""
    checked = mark_missing_masks(rows)
    for before, after in zip(rows, checked):
        if after.status != before.status:
            click.echo(f"error: {after.file}: {after.error}", err=True)
    return checked


def _write_reports(
    out_dir: Path, report_path: Path | None, results: list[ManifestRow], input_errors: list[InputImageError]
) -> Path:
    """The manifest (and the failures report); a failure to write them is one error line, not a second traceback."""
    manifest = out_dir / MANIFEST_NAME
    rows = [*(ManifestRow.input_error(error) for error in input_errors), *results]
    try:
        write_manifest(manifest, rows)
        if report_path is not None:
            write_manifest(report_path, rows, failures_only=True)
    except OSError as exc:
        click.echo(f"error: cannot write {manifest} or the report ({exc.strerror or exc})", err=True)
    return manifest


if __name__ == "__main__":
    main()
