"""How much arithmetic the model does, and how much a card could do: for the bench's achieved-TFLOP/s column.

The FLOP count is PyTorch's (`torch.utils.flop_counter`: 2 per multiply-add of convolutions and matrix
products), taken on the meta device (no memory, no compute) at 64 px and scaled to the input size: every
layer's work grows with the number of pixels.
"""

from __future__ import annotations

import functools

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..model import ResNet34UNet

COUNT_SIZE_PX = 64
DENSE_FP16_PEAK_TFLOPS = {
    "H100 PCIe": 756.0,
    "H100": 989.4,
    "H200": 989.4,
    "A100": 312.0,
    "L40S": 362.1,
    "L4": 121.0,
    "A10": 125.0,
    "T4": 65.0,
}
"""Dense FP16 tensor-core peaks from NVIDIA's datasheets (TFLOP/s, no sparsity): a reference, not a measurement.
Matched by name in this order (the PCIe H100 before the SXM one)."""


def flops_per_image(size_px: int) -> float:
    """The model's FLOPs for one square image of `size_px`."""
    return _flops_at_count_size() * (size_px / COUNT_SIZE_PX) ** 2


@functools.cache
def _flops_at_count_size() -> float:
    """Counted once per process (a forward pass on the meta device)."""
    with torch.device("meta"):
        model = ResNet34UNet().eval()
        x = torch.empty((1, 3, COUNT_SIZE_PX, COUNT_SIZE_PX))
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return float(counter.get_total_flops())


def dense_fp16_peak_tflops(gpu_name: str | None) -> float | None:
    """The datasheet peak of a known card, or None."""
    if not gpu_name:
        return None
    for name, peak in DENSE_FP16_PEAK_TFLOPS.items():
        if name in gpu_name:
            return peak
    return None
