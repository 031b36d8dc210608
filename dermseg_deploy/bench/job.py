"""What `dermseg-bench` does once its command line is parsed: measure each engine at each batch size, with
progress, then print the table and write the JSON and the plot."""

from __future__ import annotations

import datetime
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import click
from tqdm import tqdm

from ..backends import open_backend
from ..core.mask_options import MaskOptions
from ..defaults import MAX_BATCH_SIZE
from ..errors import UserError
from ..files.inputs import image_files
from ..model.flops import flops_per_image
from ..segment.segmenter import Segmenter
from ..util.devices import Device, resolve_device
from ..util.extras import require_torch
from .cpu_peak import cpu_peak
from .engines import EngineSpec, parse_engine, tf32_enabled
from .environment import describe_environment
from .flops import dense_fp16_peak_tflops
from .measure import BenchResult, masks_iou, measure_end_to_end, measure_stages
from .plot import environment_caption, plot_unavailable, write_plot
from .report import format_table, write_json
from .settings import BenchSettings


@dataclass(frozen=True)
class BenchRequest:
    """`dermseg-bench`'s options, as parsed."""

    engines: list[str]
    batch_sizes: str
    images_dir: Path | None
    size_px: int | None
    device: str
    reference: str | None
    warmup: int
    min_iterations: int
    min_seconds: float
    max_seconds: float
    io_threads: int
    full_decode: bool
    json_path: Path | None
    plot_path: Path | None
    quiet: bool
    masks: list[MaskOptions] = field(default_factory=lambda: [MaskOptions()])
    """Each mask setting (test-time augmentation, post-processing) is measured as its own row."""


def parse_batch_sizes(text: str, image_count: int) -> list[int]:
    """Positive batch sizes, none above the number of images (a batch would repeat images and time them twice)."""
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise UserError(f"--batch-sizes {text}: expected comma-separated integers") from exc
    if not sizes or any(not 1 <= size <= MAX_BATCH_SIZE for size in sizes):
        raise UserError(f"--batch-sizes {text}: expected integers from 1 to {MAX_BATCH_SIZE}")
    too_large = [size for size in sizes if size > image_count]
    if too_large:
        raise UserError(f"--batch-sizes {text}: {', '.join(map(str, too_large))} exceed the {image_count} image(s) to "
                        "measure on, so batches would repeat images; give more --images or smaller batches")
    return sizes


def _bench_one(spec: EngineSpec, batch: int, images: list[Path], device: Device, size_px: int | None,
               settings: BenchSettings, out: Path, reduced_jpeg: bool, tick: Callable[[], None],
               masks: MaskOptions) -> BenchResult:
    """One engine at one batch size; its masks go to `out` (created here)."""
    out.mkdir(parents=True)
    if spec.naive:
        require_torch(f"--engine {spec.text} (the naive PyTorch baseline)")
        from ..model.checkpoint import load_checkpoint, model_from_checkpoint
        from .naive import NaiveBaseline

        checkpoint = load_checkpoint(spec.path)
        metadata = checkpoint.metadata.with_updates(size_px=size_px or checkpoint.metadata.size_px)
        naive = NaiveBaseline(model_from_checkpoint(checkpoint, str(spec.path)), metadata, device)
        stage_ms, rate, count = naive.measure(images, settings, out, tick)
        result = BenchResult(spec.text, "naive-pil-pytorch-fp32-eager", 1, stage_ms, tf32=spec.tf32, images_per_batch=1,
                             size_px=metadata.size_px)
        result.inference_images_per_s = 1000.0 / stage_ms["inference"]["mean"]
        result.end_to_end_images_per_s, result.end_to_end_images = rate, count
        result.notes.append("one image at a time, no overlap; batch size does not apply")
        return result
    backend = open_backend(spec.path, device, size_px, spec.options)
    with Segmenter(backend, reduced_jpeg=reduced_jpeg, mask_options=masks) as segmenter:
        stage_ms = measure_stages(segmenter, images, settings, out, tick)
        rate, count = measure_end_to_end(segmenter, images, settings, out, settings.min_seconds, tick)
        result = BenchResult(spec.text, segmenter.backend.name + ("-tf32" if spec.tf32 else ""), batch, stage_ms,
                             tf32=spec.tf32, images_per_batch=batch, size_px=segmenter.metadata.size_px,
                             masks=masks.describe(), views=masks.views, arithmetic=segmenter.backend.arithmetic)
        result.compile_seconds = getattr(segmenter.backend, "compile_seconds", None)
    result.inference_images_per_s = batch * 1000.0 / stage_ms["inference"]["mean"]
    result.end_to_end_images_per_s, result.end_to_end_images = rate, count
    return result


def _set_peak_share(result: BenchResult, device: Device, gpu_peak_tflops: float | None) -> None:
    """The row's share of the card's dense FP16 datasheet peak, or of this CPU's estimated peak for its arithmetic."""
    assert result.achieved_tflops is not None
    if device.is_cuda:
        if gpu_peak_tflops is not None:
            result.peak_share = result.achieved_tflops / gpu_peak_tflops
            result.peak_how = f"dense FP16 datasheet peak {gpu_peak_tflops:g} TFLOP/s"
        return
    estimate = cpu_peak(result.arithmetic)
    if estimate is not None:
        result.peak_share = result.achieved_tflops * 1000 / estimate.gflops
        result.peak_how = f"{result.arithmetic} peak {estimate.gflops:.0f} GFLOP/s = {estimate.how}"


def _run_folder(work: Path, index: int, spec: EngineSpec, batch: int) -> Path:
    """A named folder per run: `<index>-<variant or suffix>-batch<N>`."""
    label = spec.variant or spec.path.suffix.lstrip(".") or "model"
    return work / f"{index:02d}-{label}-batch{batch}"


def _runs(specs: list[EngineSpec], reference_text: str, sizes: list[int],
          masks: list[MaskOptions]) -> list[tuple[EngineSpec, int, MaskOptions]]:
    """Every engine x batch size x mask setting, the reference engine's first setting first (the naive baseline
    goes one image at a time, plain)."""
    ordered = sorted(specs, key=lambda s: s.text != reference_text)
    return [(spec, batch, mask) for spec in ordered for mask in ([MaskOptions()] if spec.naive else masks)
            for batch in ([1] if spec.naive else sizes)]


def run_bench(request: BenchRequest) -> None:
    """Measure, print the table (and percentile warnings), write the JSON and the plot where asked."""
    device = resolve_device(request.device)
    specs = [parse_engine(text, device) for text in request.engines]
    if request.reference is not None and request.reference not in request.engines:
        raise UserError(f"--reference {request.reference}: not one of the --engine values")
    reference_text = request.reference or request.engines[0]
    images = image_files(request.images_dir)
    if not images:
        raise UserError(f"no images in {request.images_dir or 'the shipped samples'}")
    sizes = parse_batch_sizes(request.batch_sizes, len(images))
    skip_plot = plot_unavailable() if request.plot_path is not None else None
    results: list[BenchResult] = []
    environment = describe_environment(device)
    peak = dense_fp16_peak_tflops(environment.get("gpu"))
    with tempfile.TemporaryDirectory(prefix="dermseg-bench-") as folder:
        reference_masks: Path | None = None
        runs = _runs(specs, reference_text, sizes, request.masks)
        for index, (spec, batch, masks) in enumerate(runs):
            settings = BenchSettings(batch, request.warmup, request.min_iterations, request.min_seconds,
                                     request.io_threads, request.max_seconds)
            setting = "" if masks.plain else f" ({masks.describe()})"
            label = f"[{index + 1}/{len(runs)}] {spec.text} at batch {batch}{setting} on {len(images)} images"
            out = _run_folder(Path(folder), index, spec, batch)
            with tf32_enabled(spec.tf32), tqdm(desc=label, unit="batch", file=sys.stderr, dynamic_ncols=True,
                                               disable=request.quiet) as bar:
                result = _bench_one(spec, batch, images, device, request.size_px, settings, out,
                                    not request.full_decode, lambda: bar.update(1), masks)
            flops = flops_per_image(result.size_px) * result.views
            result.achieved_tflops = flops * result.inference_images_per_s / 1e12
            _set_peak_share(result, device, peak)
            if reference_masks is None and spec.text == reference_text:
                reference_masks = out
            if reference_masks is not None:
                result.mean_iou_vs_reference = masks_iou(out, reference_masks)
                result.reference = reference_text
            results.append(result)
    click.echo(format_table(results, device.is_cuda))
    environment["date"] = datetime.date.today().isoformat()
    environment["dense_fp16_peak_tflops"] = peak
    settings_doc = {"images": [p.name for p in images], "batch_sizes": sizes, "warmup": request.warmup,
                    "min_iterations": request.min_iterations, "min_seconds": request.min_seconds,
                    "max_seconds": request.max_seconds, "size_px": request.size_px,
                    "draft_decode": not request.full_decode, "io_threads": request.io_threads,
                    "masks": [m.describe() for m in request.masks]}
    if request.json_path is not None:
        write_json(request.json_path, results, environment, settings_doc)
        click.echo(f"wrote {request.json_path}", err=True)
    if request.plot_path is not None:
        if skip_plot is not None:
            click.echo(f"note: {skip_plot}", err=True)
        else:
            write_plot(request.plot_path, results, environment_caption(environment, len(images)))
            click.echo(f"wrote {request.plot_path}", err=True)
