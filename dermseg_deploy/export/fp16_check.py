"""Is the model safe in FP16 arithmetic? FP16 against FP32 on real images, at the export size.

ONNX Runtime on the CPU computes an FP16 graph with FP32 kernels, so it cannot show FP16 overflow. On a GPU
the check runs PyTorch in half precision, which overflows where FP16 hardware would; on the CPU, where
PyTorch's half kernels are very slow, it runs the emulation of `fp16_emulation` (FP32 kernels, weights and
every layer's output rounded to FP16), which keeps overflow and rounding at FP32 speed, and says so.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..defaults import DEFAULT_MIN_MEAN_IOU
from .fp16_emulation import EmulatedFp16
from .parity import mask_iou


@dataclass(frozen=True)
class Fp16ArithmeticReport:
    """Per-image mask IoU of FP16 against FP32, the largest |logit difference|, and non-finite outputs."""

    device: str
    mode: str
    """`PyTorch half`, or `emulated FP16` (FP32 kernels, weights and activations rounded to FP16)."""
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
            f"FP16 arithmetic ({self.mode} vs FP32 on {self.device}, {self.size_px} px, {len(self.ious)} images not "
            f"used for calibration): mean mask IoU {self.mean_iou:.6f} (required {self.min_mean_iou:g}), worst "
            f"{worst:.6f}, max |logit diff| {self.max_abs_logit_diff:.3g}, images with inf/NaN: "
            f"{self.nonfinite_images}: {verdict}"
        )


EMULATED = "FP16 emulated with FP32 kernels (weights and activations rounded to FP16)"
HALF = "PyTorch half"


@torch.inference_mode()
def check_fp16_arithmetic(
    model: torch.nn.Module, batch: torch.Tensor, logit_threshold: float, device: torch.device,
    min_mean_iou: float = DEFAULT_MIN_MEAN_IOU, emulate: bool | None = None,
    on_image: Callable[[int, int], None] = lambda done, total: None,
) -> Fp16ArithmeticReport:
    """Run `model` in FP32 and in FP16 on each preprocessed image of `batch`, one at a time; `emulate` (default:
    on the CPU) picks the emulation over PyTorch half. `on_image(done, total)` follows the progress."""
    emulate = device.type == "cpu" if emulate is None else emulate
    full = copy.deepcopy(model).float().eval().to(device)
    fp16: torch.nn.Module = EmulatedFp16(model) if emulate else copy.deepcopy(model).half()
    fp16 = fp16.eval().to(device)
    ious: list[float] = []
    worst_diff = 0.0
    nonfinite = 0
    for index, image in enumerate(batch):
        x = image[None].to(device, torch.float32)
        reference = full(x).float()
        candidate = (fp16(x) if emulate else fp16(x.half())).float()
        on_image(index + 1, len(batch))
        if not bool(torch.isfinite(candidate).all()):
            nonfinite += 1
            ious.append(0.0)
            continue
        worst_diff = max(worst_diff, float((reference - candidate).abs().max().item()))
        ious.append(mask_iou(reference > logit_threshold, candidate > logit_threshold))
    return Fp16ArithmeticReport(str(device), EMULATED if emulate else HALF, int(batch.shape[-1]), tuple(ious),
                                worst_diff, nonfinite, min_mean_iou)
