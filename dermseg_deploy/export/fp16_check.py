"""Is the model safe in FP16 arithmetic? PyTorch in half precision against FP32 on real images.

ONNX Runtime on the CPU computes an FP16 graph with FP32 kernels, so it cannot show FP16 overflow;
PyTorch's half precision overflows where FP16 hardware would.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from .parity import mask_iou

DEFAULT_MIN_MEAN_IOU = 0.99


@dataclass(frozen=True)
class Fp16ArithmeticReport:
    """Per-image mask IoU of FP16 against FP32, the largest |logit difference|, and non-finite outputs."""

    device: str
    size_px: int
    ious: tuple[float, ...]
    max_abs_logit_diff: float
    nonfinite_images: int
    min_mean_iou: float

    @property
    def mean_iou(self) -> float:
        return sum(self.ious) / len(self.ious) if self.ious else 1.0

    @property
    def passed(self) -> bool:
        return self.nonfinite_images == 0 and self.mean_iou >= self.min_mean_iou

    def summary(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        worst = min(self.ious) if self.ious else 1.0
        return (
            f"FP16 arithmetic (PyTorch half vs FP32 on {self.device}, {self.size_px} px, {len(self.ious)} images not "
            f"used for calibration): mean mask IoU {self.mean_iou:.6f} (required {self.min_mean_iou:g}), worst "
            f"{worst:.6f}, max |logit diff| {self.max_abs_logit_diff:.3g}, images with inf/NaN: "
            f"{self.nonfinite_images}: {verdict}"
        )


@torch.inference_mode()
def check_fp16_arithmetic(
    model: torch.nn.Module, batch: torch.Tensor, logit_threshold: float, device: torch.device,
    min_mean_iou: float = DEFAULT_MIN_MEAN_IOU,
) -> Fp16ArithmeticReport:
    """Run `model` in FP32 and a half-precision copy on each preprocessed image of `batch`, one at a time."""
    full = copy.deepcopy(model).float().eval().to(device)
    half = copy.deepcopy(model).half().eval().to(device)
    ious: list[float] = []
    worst_diff = 0.0
    nonfinite = 0
    for image in batch:
        x = image[None].to(device, torch.float32)
        reference = full(x).float()
        candidate = half(x.half()).float()
        if not bool(torch.isfinite(candidate).all()):
            nonfinite += 1
            ious.append(0.0)
            continue
        worst_diff = max(worst_diff, float((reference - candidate).abs().max().item()))
        ious.append(mask_iou(reference > logit_threshold, candidate > logit_threshold))
    return Fp16ArithmeticReport(str(device), int(batch.shape[-1]), tuple(ious), worst_diff, nonfinite, min_mean_iou)
