"""Step `openvino`, FP32 ONNX -> OpenVINO IR (`model.xml` + `model.bin`, FP32 weights, the input spec in its
rt_info), checked against ONNX Runtime on the same real images as the ONNX step: max |logit difference| and mask IoU."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..backends.openvino_backend import OpenVinoBackend
from ..defaults import DEFAULT_ATOL, DEFAULT_MIN_IOU
from ..model.metadata import OPENVINO_METADATA_PATH, ModelMetadata
from ..util.extras import OPENVINO_EXTRA, extra_hint, require_module
from .check_images import CheckSet
from .naming import IR_WEIGHTS_SUFFIX
from .onnx_step import onnxruntime_cpu_logits
from .parity import ParityReport, compare_logits
from .staging import StagedArtefact


@dataclass(frozen=True)
class OpenVinoExport:
    """The FP32 IR (under its final name if the parity check passed, else its `.failed` name)."""

    path: Path
    parity: ParityReport

    @property
    def passed(self) -> bool:
        return self.parity.passed

    def summary(self) -> str:
        where = f"wrote {self.path}" if self.passed else f"kept {self.path} for inspection (its check failed)"
        return f"{where} (+ {self.path.with_suffix(IR_WEIGHTS_SUFFIX).name}; OpenVINO IR, FP32 weights); {self.parity.summary()}"


def save_ir(model: Any, metadata: ModelMetadata, xml: Path) -> None:
    """Write `model` as an IR at `xml` (+ its .bin) with the input spec in its rt_info; weights as they are (no FP16
    compression: OpenVINO's default would halve them)."""
    ov = require_module("openvino", "an OpenVINO export", extra_hint(OPENVINO_EXTRA))
    model.set_rt_info(metadata.to_json(), list(OPENVINO_METADATA_PATH))
    ov.save_model(model, str(xml), compress_to_fp16=False)


def openvino_cpu_logits(xml: Path, batch: torch.Tensor, precision: str = "fp32") -> torch.Tensor:
    """OpenVINO on the CPU, one image at a time (bounded memory at 1024 px)."""
    with OpenVinoBackend(xml, precision=precision) as backend:
        return torch.cat([torch.from_numpy(backend.infer(image[None].numpy())) for image in batch])


def openvino_from_onnx(
    onnx_path: Path, metadata: ModelMetadata, final: Path, failed: Path, checks: CheckSet, atol: float = DEFAULT_ATOL,
    min_iou: float = DEFAULT_MIN_IOU,
) -> OpenVinoExport:
    """Convert the checked FP32 ONNX to an IR and compare OpenVINO (FP32, CPU) with ONNX Runtime (CPU) on `checks`:
    max |logit difference| <= `atol` and worst mask IoU >= `min_iou`."""
    ov = require_module("openvino", "--formats openvino", extra_hint(OPENVINO_EXTRA))
    staged = StagedArtefact(final, failed, companions=(IR_WEIGHTS_SUFFIX,))
    try:
        save_ir(ov.convert_model(str(onnx_path)), metadata.with_updates(extra={**metadata.extra, "precision": "fp32"}),
                staged.temp)
        reference = onnxruntime_cpu_logits(onnx_path, checks.batch)
        logits = openvino_cpu_logits(staged.temp, checks.batch)
    except BaseException:
        staged.discard()
        raise
    comparison = compare_logits(reference, logits, metadata.logit_threshold, "onnxruntime-cpu", "openvino-cpu fp32")
    report = ParityReport(comparison, atol=atol, min_worst_iou=min_iou)
    return OpenVinoExport(staged.publish(report.passed), report)
