"""Device selection: `auto`, `cpu`, `cuda` or `cuda:N`, never a silent fallback."""

from __future__ import annotations

import torch

from .errors import BackendUnavailableError, UserError


def resolve_device(spec: str) -> torch.device:
    """Turn a device flag into a torch.device; `auto` picks CUDA when present; unavailable CUDA is an error."""
    spec = spec.strip().lower()
    if spec == "auto":
        return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
    try:
        device = torch.device(spec)
    except RuntimeError as exc:
        raise UserError(f"unknown device {spec!r} (use auto, cpu, cuda or cuda:N)") from exc
    if device.type == "cpu":
        if device.index is not None:
            raise UserError(f"unsupported device {spec!r}: the CPU has no index (use cpu)")
        return torch.device("cpu")
    if device.type != "cuda":
        raise UserError(f"unsupported device {spec!r} (use auto, cpu, cuda or cuda:N)")
    if not torch.cuda.is_available():
        raise BackendUnavailableError(f"device {spec} was requested but CUDA is not available on this machine")
    index = device.index if device.index is not None else torch.cuda.current_device()
    if index >= torch.cuda.device_count():
        raise BackendUnavailableError(f"device {spec} was requested but only {torch.cuda.device_count()} GPU(s) exist")
    return torch.device("cuda", index)


def describe_device(device: torch.device) -> str:
    """A human-readable name: `cpu` or `cuda:0 (NVIDIA H100 80GB HBM3)`."""
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return "cpu"
