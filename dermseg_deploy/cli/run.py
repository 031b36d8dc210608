"""`dermseg-run --engine MODEL INPUT...`: masks for image files and folders.

This module parses the command line only (and imports nothing heavy, so --help is fast); `run_job` does the
work.
"""

from __future__ import annotations

from pathlib import Path

import click

from ..defaults import DEFAULT_MAX_PIXELS, DEFAULT_REVIEW_BELOW, DEVICE_HELP, MAX_BATCH_SIZE, MAX_THREADS
from ..version import __version__
from .common import backend_option_flags, debug_option, debugging, handle_errors, mask_option_flags, model_or_shipped


def _check_threshold(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    if value is not None and not 0.0 < value < 1.0:
        raise click.BadParameter("must lie strictly between 0 and 1 (a probability)")
    return value


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dermseg-run")
@click.option("--engine", "model_path", default=None, type=click.Path(path_type=Path),
              help="Model file: .pt (PyTorch), .onnx (ONNX Runtime), .xml (OpenVINO) or .plan/.engine (TensorRT). "
                   "Default: the model shipped with dermseg (an INT8 ONNX; said at the start, with its licence).")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", "out_dir", default=Path("masks"), show_default=True, type=click.Path(path_type=Path),
              help="Output folder; masks mirror each input folder's tree.")
@click.option("--size", "size_px", type=int, default=None,
              help="Square input side (multiple of 32). Any size for .pt; must match an exported model's size.")
@click.option("--batch-size", type=click.IntRange(1, MAX_BATCH_SIZE), default=None,
              help="Images per inference batch (default: 1 on the CPU, where the first mask comes soonest at the same "
                   "throughput; 4 on CUDA and with --ray).")
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@click.option("--threshold", type=float, default=None, callback=_check_threshold,
              help="Lesion probability threshold (default: the model's, usually 0.5).")
@click.option("--overwrite", is_flag=True, help="Segment again even where a mask already exists.")
@click.option("--overlay", is_flag=True, help="Also write <name>_overlay.jpg with the mask outline over the image.")
@click.option("--max-pixels", type=click.IntRange(min=1), default=DEFAULT_MAX_PIXELS, show_default=True,
              help="Refuse images with more pixels than this (decompression bombs).")
@click.option("--io-threads", type=click.IntRange(1, MAX_THREADS), default=4, show_default=True,
              help="Threads that read/decode inputs and encode/write outputs.")
@click.option("--report", "report_path", type=click.Path(path_type=Path), default=None,
              help="Also write the failed inputs alone, with their reasons, to this CSV.")
@click.option("--review-below", type=click.FloatRange(0, 1), default=DEFAULT_REVIEW_BELOW, show_default=True,
              help="Flag masks whose predicted Jaccard is below this for review: review=yes in manifest.csv, listed in "
                   "review.txt, an orange frame on --overlay.")
@click.option("--trust-plan", is_flag=True,
              help=".plan: allow a version-compatible plan built by an older TensorRT to run the host code it carries.")
@click.option("--channels-last", is_flag=True, help=".pt: channels-last memory format (faster FP16 on CUDA).")
@click.option("--cuda-graphs", is_flag=True, help=".pt on CUDA: capture and replay a CUDA graph per batch shape.")
@click.option("--compile", "compile_model", is_flag=True,
              help=".pt: fold BatchNorm into the convolutions, pad the last block for tensor cores, then torch.compile "
                   "(inductor; the first batch of each shape compiles: seconds to minutes, cached on disk).")
@mask_option_flags
@backend_option_flags
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
@debug_option
@handle_errors
def main(
    model_path: Path | None, inputs: tuple[Path, ...], out_dir: Path, size_px: int | None, batch_size: int | None, device: str,
    threshold: float | None, overwrite: bool, overlay: bool, max_pixels: int, io_threads: int, threads: int | None,
    report_path: Path | None, provider: str, trust_plan: bool, precision: str, channels_last: bool, cuda_graphs: bool,
    compile_model: bool, tta: str, postprocess: str, full_decode: bool, ray: bool, ray_address: str | None,
    ray_actors: int | None, quiet: bool, debug: bool, review_below: float,
) -> None:
    """Segment skin lesions in image files and folders (recursive); write <name>_segmentation.png masks.

    Ctrl-C or SIGTERM stops after the current batch, writes the manifest and reports what was done; run the
    same command again to finish (existing masks are skipped).

    Every mask gets a predicted Jaccard from the model's own logits (calibrated where the model carries a
    calibration for these settings); masks below --review-below are flagged: manifest.csv's review column, review.txt,
    and the summary says how many.

    One bad image never stops the others: it gets a failed row with one error line. An image that fails on an
    exception dermseg did not expect (a bug) is an internal error: the others are done, and the run exits 70 at the
    end (--debug prints the tracebacks). A disk that cannot be written ends the run (exit 2), with the manifest and
    summary of what was done.

    Exit codes: 0 all done; 1 some inputs failed (the rest done); 2 usage, user, model-file or output error; 3 a
    check failed; 4 backend, device or precision unavailable; 130 interrupted (SIGINT), 143 terminated (SIGTERM);
    70 internal error (an image's, after the others are done; or the run's).
    """
    from ..core.mask_options import MaskOptions
    from .run_job import RunRequest, run_job

    run_job(RunRequest(
        model_or_shipped(model_path), list(inputs), out_dir, size_px, batch_size, device, threshold, overwrite, overlay,
        max_pixels, io_threads, threads, report_path, provider, trust_plan, precision, channels_last, cuda_graphs,
        compile_model, full_decode, ray, ray_address, ray_actors, quiet, MaskOptions.parse(tta, postprocess),
        debugging(debug), review_below,
    ))


if __name__ == "__main__":
    main()
