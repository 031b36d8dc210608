"""`dermseg-export model.pt`: FP32 ONNX, FP16 ONNX (ModelOpt AutoCast), and a TensorRT FP16 plan, each checked."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import torch

from . import __version__
from .backends.onnxruntime_backend import OnnxRuntimeBackend
from .checkpoint import load_checkpoint, model_from_checkpoint
from .cli_common import EXIT_CHECK_FAILED, EXIT_OK, error_line, handle_errors
from .devices import resolve_device
from .errors import BackendUnavailableError, UserError
from .export.check_images import choose_export_images, load_batch, synthetic_batch
from .export.fp16_check import DEFAULT_MIN_MEAN_IOU, check_fp16_arithmetic
from .export.fp16_onnx import convert_to_fp16_onnx
from .export.onnx_export import DEFAULT_OPSET, EXPORTERS, export_onnx
from .export.parity import ParityReport, compare_logits
from .metadata import DEFAULT_DEPLOY_SIZE_PX, ModelMetadata
from .tensorrt.availability import require_tensorrt
from .tensorrt.batch_profile import BatchProfile
from .tensorrt.build_options import BuildOptions
from .tensorrt.sidecar import HARDWARE_LEVELS

DEFAULT_ATOL = 1e-3
DEFAULT_MIN_IOU = 0.999


def pytorch_logits(model: torch.nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """Reference logits, one image at a time to bound memory at 1024 px on the CPU."""
    with torch.inference_mode():
        return torch.cat([model(image[None]) for image in batch])


def onnxruntime_cpu_logits(onnx_path: Path, batch: torch.Tensor) -> torch.Tensor:
    with OnnxRuntimeBackend(onnx_path, torch.device("cpu")) as backend:
        return torch.cat([backend.infer(image[None]) for image in batch])


def build_plan(fp16_path: Path, plan_path: Path, metadata: ModelMetadata, device: torch.device, options: BuildOptions) -> str:
    """Build the TensorRT plan (TensorRT imported here only); returns a summary line."""
    from .tensorrt.engine_build import build_engine

    if device.type != "cuda":
        raise BackendUnavailableError("building a TensorRT plan needs a CUDA GPU; none is available (pass --no-engine)")
    sidecar = build_engine(fp16_path, plan_path, metadata, options, device.index or 0)
    return (f"wrote {plan_path} and {plan_path.name}.json (TensorRT {sidecar.tensorrt_version}, {sidecar.gpu_name}, "
            f"compute capability {sidecar.compute_capability[0]}.{sidecar.compute_capability[1]}, batch "
            f"{options.profile.min_batch}/{options.profile.opt_batch}/{options.profile.max_batch})")


def check_plan(plan_path: Path, batch: torch.Tensor, reference: torch.Tensor, metadata: ModelMetadata,
               device: torch.device) -> ParityReport:
    """The built plan against PyTorch FP32 on the check images: mean mask IoU >= 0.99."""
    from .tensorrt.engine_runtime import TensorRTBackend

    with TensorRTBackend(plan_path, device) as backend:
        logits = torch.cat([backend.infer(image[None].to(device)).cpu() for image in batch])
    return compare_logits(reference, logits, metadata.logit_threshold, float("inf"), 0.0, "pytorch-cpu-fp32", "tensorrt")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dermseg-export")
@click.argument("checkpoint_path", type=click.Path(path_type=Path))
@click.option("--size", "size_px", type=int, default=DEFAULT_DEPLOY_SIZE_PX, show_default=True,
              help="Square input side of the exported model (multiple of 32), whatever the training size.")
@click.option("-o", "--output-dir", "out_dir", type=click.Path(path_type=Path), default=None,
              help="Folder for the exported files (default: next to the checkpoint).")
@click.option("--calib", "calib_dir", type=click.Path(path_type=Path), default=None,
              help="Folder of real images that calibrate the FP16 conversion (default: the shipped samples).")
@click.option("--calib-count", type=click.IntRange(min=1), default=2, show_default=True,
              help="How many calibration images (or synthetic inputs). AutoCast keeps every intermediate tensor of "
                   "each in memory: about 8 GiB per image at 1024 px.")
@click.option("--synthetic-calib", is_flag=True, help="Calibrate on seeded random inputs instead of real images.")
@click.option("--parity-images", "parity_dir", type=click.Path(path_type=Path), default=None,
              help="Folder of real images for the checks; calibration images are left out (default: the samples).")
@click.option("--parity-count", type=click.IntRange(min=1), default=2, show_default=True,
              help="How many check images (about 1 TFLOP each at 1024 px).")
@click.option("--atol", type=float, default=DEFAULT_ATOL, show_default=True,
              help="Max |logit difference| allowed between ONNX Runtime and PyTorch in FP32.")
@click.option("--min-iou", type=click.FloatRange(0, 1), default=DEFAULT_MIN_IOU, show_default=True,
              help="Worst per-image mask IoU allowed between ONNX Runtime and PyTorch in FP32.")
@click.option("--fp16-min-iou", type=click.FloatRange(0, 1), default=DEFAULT_MIN_MEAN_IOU, show_default=True,
              help="Mean mask IoU FP16 must reach against FP32 (PyTorch half, and the TensorRT plan).")
@click.option("--check-device", default="auto", show_default=True,
              help="Where the FP16 arithmetic check and the engine build run: auto, cpu, cuda or cuda:N.")
@click.option("--no-engine", is_flag=True, help="Stop after the ONNX files (no TensorRT plan).")
@click.option("--min-batch", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--opt-batch", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--max-batch", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--workspace-mb", type=click.IntRange(min=64), default=4096, show_default=True,
              help="TensorRT builder workspace limit.")
@click.option("--opt-level", type=click.IntRange(0, 5), default=3, show_default=True,
              help="TensorRT builder optimisation level.")
@click.option("--version-compatible", is_flag=True,
              help="Build a plan that newer TensorRT versions of the same major version can load (with --trust-plan).")
@click.option("--hardware-compatible", type=click.Choice(HARDWARE_LEVELS), default="none", show_default=True,
              help="Build a plan for other GPUs: ampere_plus, or same_compute_capability.")
@click.option("--exporter", type=click.Choice(EXPORTERS), default="dynamo", show_default=True,
              help="PyTorch's torch.export-based exporter, or the older TorchScript one.")
@click.option("--opset", type=int, default=DEFAULT_OPSET, show_default=True)
@handle_errors
def main(
    checkpoint_path: Path, size_px: int, out_dir: Path | None, calib_dir: Path | None, calib_count: int,
    synthetic_calib: bool, parity_dir: Path | None, parity_count: int, atol: float, min_iou: float,
    fp16_min_iou: float, check_device: str, no_engine: bool, min_batch: int, opt_batch: int, max_batch: int,
    workspace_mb: int, opt_level: int, version_compatible: bool, hardware_compatible: str, exporter: str, opset: int,
) -> None:
    """Export a dermseg checkpoint to model.onnx (FP32), model.fp16.onnx and model.plan (TensorRT FP16).

    Checks, on real images that did not calibrate the FP16 conversion: ONNX Runtime against PyTorch in
    FP32; the FP16 graph in ONNX Runtime (weight rounding only: ORT's CPU computes it in FP32); PyTorch in
    half precision against FP32 (the FP16 arithmetic check); the plan against PyTorch FP32.

    Exit codes: 0 exported and checked; 2 usage error or unreadable checkpoint; 3 a check failed;
    4 TensorRT or a GPU is missing for the plan (the ONNX files are written; --no-engine stops before).
    """
    if size_px <= 0 or size_px % 32:
        raise UserError(f"--size {size_px}: must be a positive multiple of 32")
    profile = BatchProfile(min_batch, opt_batch, max_batch)
    device = resolve_device(check_device)
    checkpoint = load_checkpoint(checkpoint_path)
    model = model_from_checkpoint(checkpoint, str(checkpoint_path))
    metadata = checkpoint.metadata.with_updates(size_px=size_px)
    folder = out_dir or checkpoint_path.parent
    stem = checkpoint_path.stem
    onnx_path, fp16_path, plan_path = folder / f"{stem}.onnx", folder / f"{stem}.fp16.onnx", folder / f"{stem}.plan"
    images = choose_export_images(calib_dir, parity_dir, calib_count, parity_count, synthetic_calib)
    check_batch = load_batch(images.check, metadata)

    export_onnx(model, metadata, onnx_path, exporter=exporter, opset=opset)
    click.echo(f"wrote {onnx_path} (FP32, input {metadata.input_name} [batch,3,{size_px},{size_px}], "
               f"output {metadata.output_name}, onnx.checker passed)")
    reference = pytorch_logits(model, check_batch)
    fp32_onnx = onnxruntime_cpu_logits(onnx_path, check_batch)
    parity = compare_logits(reference, fp32_onnx, metadata.logit_threshold, atol, min_iou, "pytorch-cpu", "onnxruntime-cpu")
    click.echo(parity.summary())

    calibration = (synthetic_batch(calib_count, metadata) if synthetic_calib else load_batch(images.calibration, metadata))
    conversion = convert_to_fp16_onnx(onnx_path, fp16_path, metadata, calibration.numpy(), images.calibration_source)
    click.echo(conversion.summary())
    rounding = compare_logits(fp32_onnx, onnxruntime_cpu_logits(fp16_path, check_batch), metadata.logit_threshold,
                              float("inf"), 0.0, "onnxruntime-cpu fp32", "onnxruntime-cpu fp16 graph")
    click.echo(f"weight rounding only (ONNX Runtime on the CPU computes the FP16 graph with FP32 kernels): "
               f"mean mask IoU {rounding.mean_iou:.6f}, worst {rounding.worst_iou:.6f}, "
               f"max |logit diff| {rounding.max_abs_logit_diff:.3g} on {len(rounding.ious)} images")
    fp16 = check_fp16_arithmetic(model, check_batch, metadata.logit_threshold, device, fp16_min_iou)
    click.echo(fp16.summary())

    if not parity.passed or not fp16.passed:
        failed = ", ".join(name for name, ok in (("FP32 parity", parity.passed), ("FP16 arithmetic", fp16.passed)) if not ok)
        error_line(f"{failed} check failed; {onnx_path.name} and {fp16_path.name} were kept for inspection but are "
                   "not verified; no plan was built")
        sys.exit(EXIT_CHECK_FAILED)
    if no_engine:
        click.echo(f"not built: {plan_path.name} (--no-engine)")
        sys.exit(EXIT_OK)
    require_tensorrt(f"building {plan_path.name} (the ONNX files are written; pass --no-engine to stop before the plan)")
    options = BuildOptions(profile, workspace_mb << 20, opt_level, version_compatible, hardware_compatible)
    click.echo(build_plan(fp16_path, plan_path, metadata, device, options))
    plan_report = check_plan(plan_path, check_batch, reference, metadata, device)
    verdict = "PASS" if plan_report.mean_iou >= fp16_min_iou else "FAIL"
    click.echo(f"TensorRT plan vs PyTorch FP32 on {len(plan_report.ious)} images: mean mask IoU {plan_report.mean_iou:.6f} "
               f"(required {fp16_min_iou:g}), max |logit diff| {plan_report.max_abs_logit_diff:.3g}: {verdict}")
    sys.exit(EXIT_OK if verdict == "PASS" else EXIT_CHECK_FAILED)
