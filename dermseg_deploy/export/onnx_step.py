"""Step 1, checkpoint model -> FP32 ONNX: exported, checked by onnx.checker, then by ONNX Runtime against PyTorch."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..backends.onnxruntime_backend import OnnxRuntimeBackend
from ..defaults import DEFAULT_ATOL, DEFAULT_MIN_IOU
from ..model.metadata import ModelMetadata
from .check_images import CheckSet
from .onnx_export import DEFAULT_OPSET, export_onnx
from .parity import ParityReport, compare_logits
from .staging import StagedArtefact


@dataclass(frozen=True)
class OnnxExport:
    """The FP32 ONNX file (under its final name if the parity check passed, else its `.failed` name)."""

    path: Path
    parity: ParityReport

    @property
    def passed(self) -> bool:
        return self.parity.passed

    def summary(self) -> str:
        where = f"wrote {self.path}" if self.passed else f"kept {self.path} for inspection (its check failed)"
        return f"{where} (FP32, dynamic batch); {self.parity.summary()}"


def onnxruntime_cpu_logits(onnx_path: Path, batch: torch.Tensor) -> torch.Tensor:
    """ONNX Runtime on the CPU, one image at a time (bounded memory at 1024 px)."""
    with OnnxRuntimeBackend(onnx_path) as backend:
        return torch.cat([torch.from_numpy(backend.infer(image[None].numpy())) for image in batch])


def onnx_from_checkpoint(
    model: torch.nn.Module, metadata: ModelMetadata, final: Path, failed: Path, checks: CheckSet,
    exporter: str = "dynamo", opset: int = DEFAULT_OPSET, atol: float = DEFAULT_ATOL, min_iou: float = DEFAULT_MIN_IOU,
) -> OnnxExport:
    """Export `model` at `metadata.size_px` and compare ONNX Runtime (CPU) with PyTorch FP32 on `checks`:
    max |logit difference| <= `atol` and worst mask IoU >= `min_iou`."""
    staged = StagedArtefact(final, failed)
    try:
        export_onnx(model, metadata, staged.temp, exporter=exporter, opset=opset)
        logits = onnxruntime_cpu_logits(staged.temp, checks.batch)
    except BaseException:
        staged.discard()
        raise
    comparison = compare_logits(checks.reference, logits, metadata.logit_threshold, "pytorch-cpu", "onnxruntime-cpu")
    report = ParityReport(comparison, atol=atol, min_worst_iou=min_iou)
    return OnnxExport(staged.publish(report.passed), report)
