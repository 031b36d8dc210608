"""Step 2, FP32 ONNX -> FP16 ONNX (ModelOpt AutoCast), checked for weight rounding and FP16 arithmetic."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..model.metadata import ModelMetadata
from .check_images import CheckSet
from .fp16_check import DEFAULT_MIN_MEAN_IOU, Fp16ArithmeticReport, check_fp16_arithmetic
from .fp16_onnx import Fp16Conversion, convert_to_fp16_onnx
from .onnx_step import onnxruntime_cpu_logits
from .parity import LogitComparison, compare_logits
from .staging import StagedArtefact


@dataclass(frozen=True)
class Fp16OnnxExport:
    """The FP16 ONNX file; it passed if the FP16 arithmetic check did (weight rounding is shown, not judged:
    ONNX Runtime on the CPU runs FP16 graphs with FP32 kernels, so it cannot show FP16 overflow)."""

    path: Path
    conversion: Fp16Conversion
    rounding: LogitComparison
    arithmetic: Fp16ArithmeticReport

    @property
    def passed(self) -> bool:
        return self.arithmetic.passed

    def summary(self) -> str:
        where = "" if self.passed else f"; kept {self.path} for inspection (its check failed)"
        return "\n".join([
            self.conversion.summary() + where,
            f"weight rounding only (ONNX Runtime on the CPU computes the FP16 graph with FP32 kernels): "
            f"{self.rounding.describe()}",
            self.arithmetic.summary(),
        ])


def fp16_onnx_from_onnx(
    onnx_path: Path, final: Path, failed: Path, model: torch.nn.Module, metadata: ModelMetadata,
    calibration: np.ndarray, calibration_source: str, checks: CheckSet, device: torch.device,
    min_mean_iou: float = DEFAULT_MIN_MEAN_IOU, on_image: Callable[[int, int], None] = lambda done, total: None,
) -> Fp16OnnxExport:
    """Convert with AutoCast calibrated on `calibration`, then check on `checks` (images that did not calibrate
    it): the FP16 graph in ONNX Runtime against PyTorch FP32, and PyTorch in half precision on `device`."""
    staged = StagedArtefact(final, failed)
    try:
        conversion = convert_to_fp16_onnx(onnx_path, staged.temp, metadata, calibration, calibration_source)
        logits = onnxruntime_cpu_logits(staged.temp, checks.batch)
    except BaseException:
        staged.discard()
        raise
    rounding = compare_logits(checks.reference, logits, metadata.logit_threshold, "pytorch-cpu fp32",
                              "onnxruntime-cpu fp16 graph")
    arithmetic = check_fp16_arithmetic(model, checks.batch, metadata.logit_threshold, device, min_mean_iou,
                                       on_image=on_image)
    path = staged.publish(arithmetic.passed)
    return Fp16OnnxExport(path, Fp16Conversion(path, conversion.fp32_nodes, conversion.node_count, conversion.calibration),
                          rounding, arithmetic)
