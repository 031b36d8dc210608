"""`dermseg-bench --engine A [--engine B ...]`: per-stage latencies, inference-only and end-to-end rates.

This module parses the command line only (nothing heavy is imported before --help); `bench.job` measures.
"""

from __future__ import annotations

from pathlib import Path

import click

from ..bench.settings import MIN_PERCENTILE_SAMPLES
from ..core.mask_options import POSTPROCESS_HELP, TTA_VIEWS
from ..defaults import DEVICE_HELP, MAX_THREADS
from ..version import __version__
from .common import check_postprocess_option, handle_errors


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dermseg-bench")
@click.option("--engine", "engines", multiple=True, required=True,
              help="Model file, or variant:file (naive:, tf32:, fp16:, compiled: for .pt; ort-tensorrt:, ort-cuda: for "
                   ".onnx). "
                   "Repeat to compare; the first is the IoU reference unless --reference names another.")
@click.option("--batch-sizes", default="1,8", show_default=True,
              help="Comma-separated batch sizes; none may exceed the number of images.")
@click.option("--images", "images_dir", type=click.Path(path_type=Path), default=None,
              help="Folder of real images (default: the shipped samples).")
@click.option("--size", "size_px", type=int, default=None, help="Input side for .pt engines (default: the model's).")
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@click.option("--reference", default=None, help="The --engine whose masks the others are compared with.")
@click.option("--warmup", type=click.IntRange(min=0), default=2, show_default=True, help="Warm-up batches.")
@click.option("--min-iterations", type=click.IntRange(min=1), default=MIN_PERCENTILE_SAMPLES, show_default=True,
              help="Batches to time per engine and batch size (fewer make p90/p95/p99 meaningless: a warning says so).")
@click.option("--min-seconds", type=float, default=3.0, show_default=True, help="Minimum duration of each measurement.")
@click.option("--max-seconds", type=float, default=60.0, show_default=True,
              help="Stop a measurement after this long even below --min-iterations (the report flags it).")
@click.option("--io-threads", type=click.IntRange(1, MAX_THREADS), default=4, show_default=True,
              help="Reader and writer threads of the end-to-end pipeline.")
@click.option("--full-decode", is_flag=True, help="Decode JPEGs at full size on the CPU (no DCT-domain scaling).")
@click.option("--tta", "tta_modes", multiple=True, type=click.Choice(tuple(TTA_VIEWS)), default=("none",),
              show_default=True, help="Test-time augmentation, repeatable: each mode is its own row, so its cost shows "
                                      "(none, flips: 4 views, dihedral: 8).")
@click.option("--postprocess", "postprocess_settings", multiple=True, default=("none",), show_default=True,
              callback=check_postprocess_option,
              help="Post-processing setting, repeatable: each is its own row (with every --tta). " + POSTPROCESS_HELP)
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None,
              help="Write the results, settings and environment to this JSON file.")
@click.option("--plot", "plot_path", type=click.Path(path_type=Path), default=None,
              help="Draw latency per stage and images/s to this PNG (needs matplotlib: pip install 'dermseg[plot]').")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@handle_errors
def main(engines: tuple[str, ...], batch_sizes: str, images_dir: Path | None, size_px: int | None, device: str,
         reference: str | None, warmup: int, min_iterations: int, min_seconds: float, max_seconds: float, io_threads: int,
         full_decode: bool, tta_modes: tuple[str, ...], postprocess_settings: tuple[str, ...], json_path: Path | None,
         plot_path: Path | None, quiet: bool) -> None:
    """Benchmark engines on real images: stage latencies (mean, median, p90/p95/p99 by nearest rank), the
    inference-only rate (GPU compute time on CUDA), the end-to-end rate of the dermseg-run pipeline, and
    the mask IoU against a reference engine."""
    from ..bench.job import BenchRequest, run_bench
    from ..core.mask_options import MaskOptions

    masks = [MaskOptions.parse(tta, steps) for tta in dict.fromkeys(tta_modes) for steps in dict.fromkeys(postprocess_settings)]
    run_bench(BenchRequest(list(engines), batch_sizes, images_dir, size_px, device, reference, warmup, min_iterations,
                           min_seconds, max_seconds, io_threads, full_decode, json_path, plot_path, quiet, masks))


if __name__ == "__main__":
    main()
