"""`dermseg-bench --engine A [--engine B ...]`: per-stage latencies, inference-only and end-to-end rates."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click
import torch

from . import __version__
from .backends import open_backend
from .bench.engines import EngineSpec, parse_engine, tf32_enabled
from .bench.environment import describe_environment
from .bench.measure import BenchResult, BenchSettings, NaiveBaseline, masks_iou, measure_end_to_end, measure_stages
from .bench.report import format_table, write_json, write_plot
from .checkpoint import load_checkpoint, model_from_checkpoint
from .cli_common import handle_errors
from .devices import resolve_device
from .errors import UserError
from .export.check_images import image_files
from .segmenter import Segmenter


def _batch_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise UserError(f"--batch-sizes {text}: expected comma-separated integers") from exc
    if not sizes or any(size < 1 for size in sizes):
        raise UserError(f"--batch-sizes {text}: expected positive integers")
    return sizes


def _bench_one(spec: EngineSpec, batch: int, images: list[Path], device: torch.device, size_px: int | None,
               settings: BenchSettings, out: Path, reduced_jpeg: bool) -> BenchResult:
    """One engine at one batch size; its masks go to `out` (created here)."""
    out.mkdir(parents=True)
    if spec.naive:
        checkpoint = load_checkpoint(spec.path)
        metadata = checkpoint.metadata.with_updates(size_px=size_px or checkpoint.metadata.size_px)
        naive = NaiveBaseline(model_from_checkpoint(checkpoint, str(spec.path)), metadata, device)
        stage_ms, rate, count = naive.measure(images, settings, out)
        result = BenchResult(spec.text, "naive-pil-pytorch-fp32-eager", 1, stage_ms, tf32=spec.tf32)
        result.inference_images_per_s = 1000.0 / stage_ms["inference"]["mean"]
        result.end_to_end_images_per_s, result.end_to_end_images = rate, count
        result.notes.append("one image at a time, no overlap; batch size does not apply")
        return result
    backend = open_backend(spec.path, device, size_px, spec.options)
    with Segmenter(backend, reduced_jpeg=reduced_jpeg) as segmenter:
        stage_ms = measure_stages(segmenter, images, settings, out)
        rate, count = measure_end_to_end(segmenter, images, settings, out, settings.min_seconds)
        result = BenchResult(spec.text, segmenter.backend.name + ("-tf32" if spec.tf32 else ""), batch, stage_ms,
                             tf32=spec.tf32)
    result.inference_images_per_s = batch * 1000.0 / stage_ms["inference"]["mean"]
    result.end_to_end_images_per_s, result.end_to_end_images = rate, count
    return result


def _run_folder(work: Path, index: int, spec: EngineSpec, batch: int) -> Path:
    """A named folder per run: `<index>-<variant or suffix>-batch<N>`."""
    label = spec.variant or spec.path.suffix.lstrip(".") or "model"
    return work / f"{index:02d}-{label}-batch{batch}"


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dermseg-bench")
@click.option("--engine", "engines", multiple=True, required=True,
              help="Model file, or variant:file (naive:, tf32:, fp16: for .pt; ort-tensorrt:, ort-cuda: for .onnx). "
                   "Repeat to compare; the first is the IoU reference unless --reference names another.")
@click.option("--batch-sizes", default="1,8", show_default=True, help="Comma-separated batch sizes.")
@click.option("--images", "images_dir", type=click.Path(path_type=Path), default=None,
              help="Folder of real images (default: the shipped samples).")
@click.option("--size", "size_px", type=int, default=None, help="Input side for .pt engines (default: the model's).")
@click.option("--device", default="auto", show_default=True)
@click.option("--reference", default=None, help="The --engine whose masks the others are compared with.")
@click.option("--warmup", type=click.IntRange(min=0), default=2, show_default=True, help="Warm-up batches.")
@click.option("--min-iterations", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--min-seconds", type=float, default=3.0, show_default=True, help="Minimum duration of each measurement.")
@click.option("--io-threads", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--full-decode", is_flag=True, help="Decode JPEGs at full size on the CPU (no DCT-domain scaling).")
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None)
@click.option("--plot", "plot_path", type=click.Path(path_type=Path), default=None)
@handle_errors
def main(engines: tuple[str, ...], batch_sizes: str, images_dir: Path | None, size_px: int | None, device: str,
         reference: str | None, warmup: int, min_iterations: int, min_seconds: float, io_threads: int, full_decode: bool,
         json_path: Path | None, plot_path: Path | None) -> None:
    """Benchmark engines on real images: stage latencies (mean, median, p90/p95/p99 by nearest rank), the
    inference-only rate (GPU compute time on CUDA), the end-to-end rate of the dermseg-run pipeline, and
    the mask IoU against a reference engine."""
    torch_device = resolve_device(device)
    specs = [parse_engine(text, torch_device) for text in engines]
    if reference is not None and reference not in engines:
        raise UserError(f"--reference {reference}: not one of the --engine values")
    reference_text = reference or engines[0]
    images = image_files(images_dir)
    if not images:
        raise UserError(f"no images in {images_dir or 'the shipped samples'}")
    sizes = _batch_sizes(batch_sizes)
    results: list[BenchResult] = []
    with tempfile.TemporaryDirectory(prefix="dermseg-bench-") as folder:
        reference_masks: Path | None = None
        runs = [(spec, batch) for spec in sorted(specs, key=lambda s: s.text != reference_text)
                for batch in ([1] if spec.naive else sizes)]
        for index, (spec, batch) in enumerate(runs):
            settings = BenchSettings(batch, warmup, min_iterations, min_seconds, io_threads)
            click.echo(f"benchmarking {spec.text} at batch {batch} on {len(images)} images ...", err=True)
            out = _run_folder(Path(folder), index, spec, batch)
            with tf32_enabled(spec.tf32):
                result = _bench_one(spec, batch, images, torch_device, size_px, settings, out, not full_decode)
            if reference_masks is None and spec.text == reference_text:
                reference_masks = out
            if reference_masks is not None:
                result.mean_iou_vs_reference = masks_iou(out, reference_masks)
                result.reference = reference_text
            results.append(result)
    click.echo(format_table(results))
    environment = describe_environment(torch_device)
    settings_doc = {"images": [p.name for p in images], "batch_sizes": sizes, "warmup": warmup,
                    "min_iterations": min_iterations, "min_seconds": min_seconds, "size_px": size_px,
                    "draft_decode": not full_decode, "io_threads": io_threads}
    if json_path is not None:
        write_json(json_path, results, environment, settings_doc)
        click.echo(f"wrote {json_path}", err=True)
    if plot_path is not None:
        title = f"dermseg-bench on {environment.get('gpu', environment['cpu'])} ({len(images)} images)"
        write_plot(plot_path, results, title)
        click.echo(f"wrote {plot_path}", err=True)
