"""`dermseg-run --engine MODEL INPUT...`: masks for image files and folders."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import click
from tqdm import tqdm

from . import __version__
from .atomic import remove_stale_temp_files
from .backends import BackendOptions, open_backend
from .backends.options import ORT_PROVIDERS, TORCH_PRECISIONS
from .cli_common import EXIT_INTERRUPTED, EXIT_OK, EXIT_SOME_INPUTS_FAILED, handle_errors
from .decode import DEFAULT_MAX_PIXELS
from .devices import resolve_device
from .errors import InputImageError, OutputWriteError, UserError
from .inputs import plan_inputs
from .manifest import MANIFEST_NAME, STATUS_FAILED, STATUS_OK, STATUS_SKIPPED, ManifestRow, write_manifest
from .pipeline import RunOptions
from .results import SegmentResult
from .segmenter import Segmenter


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
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@handle_errors
def main(
    model_path: Path, inputs: tuple[Path, ...], out_dir: Path, size_px: int | None, batch_size: int, device: str,
    threshold: float | None, overwrite: bool, overlay: bool, max_pixels: int, io_threads: int, threads: int | None,
    report_path: Path | None, provider: str, trust_plan: bool, precision: str, channels_last: bool, cuda_graphs: bool,
    full_decode: bool, quiet: bool,
) -> None:
    """Segment skin lesions in image files and folders (recursive); write <name>_segmentation.png masks.

    Ctrl-C stops after the current batch and reports what was done; run the same command again to finish
    (existing masks are skipped). Exit codes: 0 all done; 1 some inputs failed (the rest done); 2 usage,
    user or output error; 3 a check failed; 4 backend, device or precision unavailable; 130 interrupted;
    70 internal error.
    """
    if not model_path.exists():
        raise UserError(f"{model_path}: model file not found")
    torch_device = resolve_device(device)
    if device == "auto":
        click.echo(f"device: auto picked {torch_device}", err=True)
    plan = plan_inputs(list(inputs), out_dir)
    if not plan.items and not plan.errors:
        raise UserError(f"no images found in {', '.join(map(str, inputs))} (looked for .jpg .jpeg .png .bmp .tif .tiff)")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputWriteError(f"{out_dir}: cannot create the output folder ({exc.strerror or exc})") from exc
    removed = remove_stale_temp_files(out_dir)
    if removed:
        click.echo(f"removed {len(removed)} temp file(s) left in {out_dir} by an interrupted run", err=True)
    options = RunOptions(batch_size, overwrite, io_threads)
    for error in plan.errors:
        click.echo(f"error: {error}", err=True)
    stop = StopFlag()
    results: list[SegmentResult] = []
    backend_options = BackendOptions(provider, trust_plan, precision, channels_last, cuda_graphs, threads)
    backend = open_backend(model_path, torch_device, size_px, backend_options)
    with Segmenter(backend, threshold, max_pixels, reduced_jpeg=not full_decode) as segmenter, stop.on_sigint():
        start = time.perf_counter()
        bar = tqdm(total=len(plan.items), unit="img", disable=quiet, file=sys.stderr, dynamic_ncols=True)
        try:
            for result in segmenter.segment_items(plan.items, options, overlay, stop.is_set):
                results.append(result)
                if result.message is not None:
                    tqdm.write(f"error: {result.message}", file=sys.stderr)
                elif result.note:
                    tqdm.write(f"note: {result.source}: {result.note}", file=sys.stderr)
                bar.update(1)
        finally:
            bar.close()
            elapsed = time.perf_counter() - start
            manifest = _write_reports(out_dir, report_path, results, plan.errors)
        backend_name = segmenter.backend.describe()
    done = sum(r.status == STATUS_OK for r in results)
    skipped = sum(r.status == STATUS_SKIPPED for r in results)
    failed = sum(r.status == STATUS_FAILED for r in results) + len(plan.errors)
    rate = done / elapsed if elapsed > 0 else 0.0
    click.echo(
        f"{done} segmented, {skipped} skipped (mask exists), {failed} failed in {elapsed:.1f} s "
        f"({rate:.2f} images/s) with {backend_name}; masks in {out_dir}/, manifest {manifest}",
        err=True,
    )
    if stop.is_set():
        left = len(plan.items) - len(results)
        click.echo(f"interrupted: {left} image(s) not started; run the same command again to finish them", err=True)
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(EXIT_SOME_INPUTS_FAILED if failed else EXIT_OK)


def _write_reports(
    out_dir: Path, report_path: Path | None, results: list[SegmentResult], input_errors: list[InputImageError]
) -> Path:
    """The manifest (and the failures report); a failure to write them is one error line, not a second traceback."""
    manifest = out_dir / MANIFEST_NAME
    rows = [*(ManifestRow.input_error(error) for error in input_errors), *(result.manifest_row() for result in results)]
    try:
        write_manifest(manifest, rows)
        if report_path is not None:
            write_manifest(report_path, rows, failures_only=True)
    except OSError as exc:
        click.echo(f"error: cannot write {manifest} or the report ({exc.strerror or exc})", err=True)
    return manifest


class StopFlag:
    """Set by the first Ctrl-C (the run stops after the current batch); a second Ctrl-C interrupts at once."""

    def __init__(self) -> None:
        self._set = False

    def is_set(self) -> bool:
        return self._set

    @contextlib.contextmanager
    def on_sigint(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, frame: object) -> None:
            if self._set:
                raise KeyboardInterrupt
            self._set = True
            click.echo("\nstopping after the current batch (Ctrl-C again to stop at once)", err=True)

        previous = signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)
