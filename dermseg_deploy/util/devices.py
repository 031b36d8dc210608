"""Devices: `auto`, `cpu`, `cuda` or `cuda:N`, never a silent fallback; torch is imported only where CUDA could be."""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from typing import Any

from ..errors import BackendUnavailableError, UserError
from .extras import TRAIN_EXTRA, extra_hint

NVIDIA_DRIVER_FILES = ("/proc/driver/nvidia/version", "/dev/nvidia0", "/dev/nvidiactl", "/dev/dxg")
"""On Linux, CUDA needs NVIDIA's kernel driver, which makes one of these (`/dev/dxg` under WSL)."""


@dataclass(frozen=True)
class Device:
    """Where a backend runs: `cpu`, or `cuda` with an index."""

    type: str
    index: int | None = None

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    @property
    def is_cuda(self) -> bool:
        return self.type == "cuda"

    def to_torch(self) -> Any:
        """The `torch.device` (imports torch: for device backends and the CUDA stages only)."""
        import torch

        return torch.device(self.type, self.index) if self.index is not None else torch.device(self.type)


CPU = Device("cpu")


def as_device(value: object) -> Device:
    """A Device from a Device, a `torch.device` or text (`cpu`, `cuda:1`); None is the CPU."""
    if value is None:
        return CPU
    if isinstance(value, Device):
        return value
    kind, index = getattr(value, "type", None), getattr(value, "index", None)
    if isinstance(kind, str):  # a torch.device
        return Device(kind, index)
    return parse_device(str(value))


def parse_device(spec: str) -> Device:
    """`cpu`, `cuda` or `cuda:N` as text -> a Device (availability is `resolve_device`'s business)."""
    text = spec.strip().lower()
    kind, _, index_text = text.partition(":")
    if kind == "cpu":
        if index_text:
            raise UserError(f"unsupported device {spec!r}: the CPU has no index (use cpu)")
        return CPU
    if kind != "cuda" or (index_text and not index_text.isdigit()):
        raise UserError(f"unknown device {spec!r} (use auto, cpu, cuda or cuda:N)")
    return Device("cuda", int(index_text) if index_text else None)


def torch_installed() -> bool:
    return importlib.util.find_spec("torch") is not None


def _no_nvidia_driver() -> bool:
    """True where CUDA surely cannot run: Linux without NVIDIA's driver (checked without importing anything)."""
    return sys.platform.startswith("linux") and not any(os.path.exists(path) for path in NVIDIA_DRIVER_FILES)


def cuda_available() -> bool:
    """Whether PyTorch is installed and sees a CUDA GPU (torch is imported only where a driver exists)."""
    if not torch_installed() or _no_nvidia_driver():
        return False
    import torch

    return bool(torch.cuda.is_available())


def resolve_device(spec: str) -> Device:
    """A device flag -> a Device; `auto` picks CUDA where PyTorch sees a GPU, else the CPU; CUDA that is not there
    is an error (exit 4), never a silent move to the CPU."""
    if spec.strip().lower() == "auto":
        return _first_cuda() if cuda_available() else CPU
    device = parse_device(spec)
    if not device.is_cuda:
        return device
    if not torch_installed():
        raise BackendUnavailableError(f"device {spec} needs PyTorch with CUDA, which is not installed: "
                                      f"{extra_hint(TRAIN_EXTRA)}")
    if not cuda_available():
        raise BackendUnavailableError(f"device {spec} was requested but CUDA is not available on this machine")
    import torch

    index = device.index if device.index is not None else torch.cuda.current_device()
    if index >= torch.cuda.device_count():
        raise BackendUnavailableError(f"device {spec} was requested but only {torch.cuda.device_count()} GPU(s) exist")
    return Device("cuda", index)


def _first_cuda() -> Device:
    import torch

    return Device("cuda", torch.cuda.current_device())


def describe_device(device: Device) -> str:
    """A human-readable name: `cpu` or `cuda:0 (NVIDIA H100 80GB HBM3)`."""
    if device.is_cuda:
        import torch

        return f"{device} ({torch.cuda.get_device_name(device.to_torch())})"
    return "cpu"


CPU_BATCH_SIZE = 1
CUDA_BATCH_SIZE = 4


def default_batch_size(device: Device | None) -> int:
    """The inference batch `dermseg-run` uses unless told: 1 on the CPU, where the first mask comes 3x sooner at the
    same throughput (the host stages overlap inference either way; benchmarks/results/cpu-limit-2026-12-06/); 4 on
    CUDA, whose kernels want batches; 4 on Ray (None: the actors' device is not known here), where each batch is a
    task."""
    return CPU_BATCH_SIZE if device is not None and not device.is_cuda else CUDA_BATCH_SIZE

