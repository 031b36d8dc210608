"""How much a card could do, for the bench's share-of-peak column (the model's own FLOP count is
`model.flops.flops_per_image`, counted from its architecture without torch)."""

from __future__ import annotations

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


def dense_fp16_peak_tflops(gpu_name: str | None) -> float | None:
    """The datasheet peak of a known card, or None."""
    if not gpu_name:
        return None
    for name, peak in DENSE_FP16_PEAK_TFLOPS.items():
        if name in gpu_name:
            return peak
    return None
