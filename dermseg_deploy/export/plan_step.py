"""Step 3, FP16 ONNX -> TensorRT plan + sidecar, checked against PyTorch FP32 on the check images."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import BackendUnavailableError
from ..model.metadata import ModelMetadata
from ..tensorrt.availability import require_tensorrt
from ..tensorrt.build_options import BuildOptions
from ..tensorrt.sidecar import PlanSidecar, sidecar_path
from ..util.atomic import atomic_write_bytes
from ..util.devices import Device
from .check_images import CheckSet
from .fp16_check import DEFAULT_MIN_MEAN_IOU
from .parity import ParityReport, compare_logits
from .staging import StagedArtefact


@dataclass(frozen=True)
class PlanExport:
    """The plan and its sidecar (final names if the plan check passed, else `.failed` names)."""

    path: Path
    sidecar: PlanSidecar
    check: ParityReport

    @property
    def sidecar_path(self) -> Path:
        return sidecar_path(self.path)

    @property
    def passed(self) -> bool:
        return self.check.passed

    def summary(self) -> str:
        s = self.sidecar
        where = f"wrote {self.path} and {self.sidecar_path.name}" if self.passed else \
            f"kept {self.path} and {self.sidecar_path.name} for inspection (the plan check failed)"
        return (f"{where} (TensorRT {s.tensorrt_version}, {s.gpu_name}, compute capability {s.compute_capability[0]}."
                f"{s.compute_capability[1]}, batch {s.batch_profile['min']}/{s.batch_profile['opt']}/{s.batch_profile['max']}); "
                f"{self.check.summary()}")


def plan_from_onnx(
    fp16_onnx: Path, final: Path, failed: Path, timing_cache: Path, metadata: ModelMetadata, options: BuildOptions,
    checks: CheckSet, device: Device, min_mean_iou: float = DEFAULT_MIN_MEAN_IOU,
) -> PlanExport:
    """Build on `device` (a CUDA GPU, which the sidecar then names), then run the plan on `checks` and compare
    with PyTorch FP32: finite logits and mean mask IoU >= `min_mean_iou`. The check trusts the plan it has just
    built (a version-compatible plan carries host code) after verifying the SHA-256 it has just recorded."""
    require_tensorrt(f"building {final.name} (the ONNX files are written; pass --no-engine to stop before the plan)")
    if not device.is_cuda:
        raise BackendUnavailableError(f"building {final.name} needs a CUDA GPU; none is available (pass --no-engine)")
    from ..backends.tensorrt_backend import TensorRTBackend
    from ..tensorrt.engine_build import build_plan

    built = build_plan(fp16_onnx, metadata, options, device.index or 0, timing_cache)
    staged = StagedArtefact(final, failed)
    try:
        atomic_write_bytes(staged.temp, built.plan)
        atomic_write_bytes(sidecar_path(staged.temp), built.sidecar.to_json().encode("utf-8"))
        with TensorRTBackend(staged.temp, device, trust_host_code=True) as backend:
            logits = torch.cat([backend.infer(image[None]).cpu() for image in checks.batch])
    except BaseException:
        staged.discard()
        raise
    comparison = compare_logits(checks.reference, logits, metadata.logit_threshold, "pytorch-cpu fp32", "tensorrt fp16")
    report = ParityReport(comparison, min_mean_iou=min_mean_iou)
    return PlanExport(staged.publish(report.passed, with_sidecar=True), built.sidecar, report)
