"""`dermseg-export model.pt [--size 1024] [-o OUTDIR]`: ONNX export with a parity check against PyTorch."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import torch

from . import __version__
from .backends.onnxruntime_backend import OnnxRuntimeBackend
from .checkpoint import load_checkpoint, model_from_checkpoint
from .cli_common import EXIT_CHECK_FAILED, EXIT_OK, handle_errors
from .decode import IMAGE_SUFFIXES, read_image
from .errors import UserError
from .export.onnx_export import DEFAULT_OPSET, EXPORTERS, export_onnx
from .export.parity import ParityReport, compare_logits
from .metadata import DEFAULT_DEPLOY_SIZE_PX, ModelMetadata
from .preprocess import preprocess_batch
from .samples import sample_image_paths

DEFAULT_ATOL = 1e-3
DEFAULT_MIN_IOU = 0.999


def parity_images(folder: Path | None, count: int) -> list[Path]:
    """Real images for the parity check: those in `folder`, or the samples dermseg ships."""
    if folder is None:
        paths = sample_image_paths()
    else:
        if not folder.is_dir():
            raise UserError(f"{folder}: parity image folder not found")
        paths = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise UserError(f"no images for the parity check in {folder or 'the shipped samples'}")
    return paths[:count]


def pytorch_logits(model: torch.nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """Reference logits, one image at a time to bound memory at 1024 px on the CPU."""
    with torch.inference_mode():
        return torch.cat([model(image[None]) for image in batch])


def check_onnx_parity(
    model: torch.nn.Module, onnx_path: Path, metadata: ModelMetadata, images: list[Path], atol: float, min_iou: float
) -> ParityReport:
    """ONNX Runtime (CPU) against PyTorch (CPU, FP32) on the same preprocessed real images."""
    batch = preprocess_batch([read_image(p) for p in images], metadata)
    reference = pytorch_logits(model, batch)
    with OnnxRuntimeBackend(onnx_path, torch.device("cpu")) as backend:
        candidate = torch.cat([backend.infer(image[None]) for image in batch])
    return compare_logits(reference, candidate, metadata.logit_threshold, atol, min_iou, "pytorch-cpu", "onnxruntime-cpu")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dermseg-export")
@click.argument("checkpoint_path", type=click.Path(path_type=Path))
@click.option("--size", "size_px", type=int, default=DEFAULT_DEPLOY_SIZE_PX, show_default=True,
              help="Square input side of the exported model (multiple of 32), whatever the training size.")
@click.option("-o", "--output-dir", "out_dir", type=click.Path(path_type=Path), default=None,
              help="Folder for the exported files (default: next to the checkpoint).")
@click.option("--parity-images", "parity_dir", type=click.Path(path_type=Path), default=None,
              help="Folder of real images for the parity check (default: the shipped samples).")
@click.option("--parity-count", type=click.IntRange(min=1), default=2, show_default=True,
              help="How many of those images to compare (about 1 TFLOP each at 1024 px).")
@click.option("--atol", type=float, default=DEFAULT_ATOL, show_default=True, help="Max |logit difference| allowed.")
@click.option("--min-iou", type=click.FloatRange(0, 1), default=DEFAULT_MIN_IOU, show_default=True,
              help="Worst per-image mask IoU allowed.")
@click.option("--exporter", type=click.Choice(EXPORTERS), default="dynamo", show_default=True,
              help="PyTorch's torch.export-based exporter, or the older TorchScript one.")
@click.option("--opset", type=int, default=DEFAULT_OPSET, show_default=True)
@handle_errors
def main(
    checkpoint_path: Path, size_px: int, out_dir: Path | None, parity_dir: Path | None, parity_count: int,
    atol: float, min_iou: float, exporter: str, opset: int,
) -> None:
    """Export a dermseg checkpoint to ONNX (FP32, dynamic batch) and check it against PyTorch.

    Exit codes: 0 exported and checked; 2 usage error or unreadable checkpoint; 3 parity check failed.
    """
    if size_px <= 0 or size_px % 32:
        raise UserError(f"--size {size_px}: must be a positive multiple of 32")
    checkpoint = load_checkpoint(checkpoint_path)
    model = model_from_checkpoint(checkpoint, str(checkpoint_path))
    metadata = checkpoint.metadata.with_updates(size_px=size_px)
    folder = out_dir or checkpoint_path.parent
    onnx_path = folder / f"{checkpoint_path.stem}.onnx"
    images = parity_images(parity_dir, parity_count)

    export_onnx(model, metadata, onnx_path, exporter=exporter, opset=opset)
    click.echo(f"wrote {onnx_path} (FP32, input {metadata.input_name} [batch,3,{size_px},{size_px}], "
               f"output {metadata.output_name}, onnx.checker passed)")
    report = check_onnx_parity(model, onnx_path, metadata, images, atol, min_iou)
    click.echo(report.summary())
    click.echo(
        f"not written: {checkpoint_path.stem}.fp16.onnx and {checkpoint_path.stem}.plan "
        "(FP16 and TensorRT export are not part of this version of dermseg)"
    )
    if not report.passed:
        click.echo(f"error: parity check failed; {onnx_path} was kept for inspection but is not verified", err=True)
        sys.exit(EXIT_CHECK_FAILED)
    sys.exit(EXIT_OK)
