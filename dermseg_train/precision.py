"""Which arithmetic a training run uses: mixed precision where the hardware has fast units for it, FP32 elsewhere.

    --amp (the default) on CUDA              FP16 autocast with a gradient scaler
    --amp on a CPU with native BF16 units    BF16 autocast (AMX or AVX-512 BF16; no scaler: BF16 has FP32's range)
    --amp on a CPU without them              FP32 (emulated BF16 would be slower than FP32)
    --no-amp                                 FP32

Weights, optimiser state and the loss stay FP32 in every case; only the forward pass's matrix work runs in the
reduced type. The choice is made once per run, here, and announced by the command line.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import torch

from dermseg_deploy.errors import UserError
from dermseg_deploy.util import cpu


class PrecisionChangeError(UserError):
    """A resume would train in another precision than the run did (exit 2 unless --allow-precision-change)."""


@dataclass(frozen=True)
class TrainPrecision:
    """`autocast_dtype`: the type autocast computes in, or None for plain FP32; `name`: fp16, bf16 or fp32 (what the
    log records); `reason`: why, for the announcement."""

    autocast_dtype: torch.dtype | None
    name: str
    reason: str

    @property
    def uses_scaler(self) -> bool:
        """FP16 needs loss scaling to keep small gradients; BF16 and FP32 do not."""
        return self.autocast_dtype == torch.float16

    def autocast(self, device_type: str) -> Any:
        """The context the forward pass and the loss run in."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type, dtype=self.autocast_dtype)

    def describe(self) -> str:
        """The line a run starts with, e.g. `precision: bf16 autocast (...); weights and optimiser in fp32`."""
        if self.autocast_dtype is None:
            return f"precision: fp32 ({self.reason})"
        return f"precision: {self.name} autocast ({self.reason}); weights, optimiser and loss in fp32"


def training_precision(amp: bool, device: torch.device) -> TrainPrecision:
    """The arithmetic of a run on `device` with mixed precision asked for (`amp`) or not; see the module docstring."""
    if not amp:
        return TrainPrecision(None, "fp32", "--no-amp")
    if device.type == "cuda":
        return TrainPrecision(torch.float16, "fp16", "CUDA")
    if device.type == "cpu" and cpu.native_bf16():
        return TrainPrecision(torch.bfloat16, "bf16", f"the CPU has native BF16 units: {cpu.bf16_units()}")
    return TrainPrecision(None, "fp32", f"this {device.type} has no native BF16 units (AMX or AVX-512 BF16), where BF16 "
                                        "would be slower than FP32")
