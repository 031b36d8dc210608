"""Backends by model-file suffix: `.pt` (PyTorch), `.onnx` (ONNX Runtime)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from ..errors import BackendUnavailableError, UserError
from .base import Backend


def _torch(path: Path, device: torch.device, size_px: int | None) -> Backend:
    from .torch_backend import TorchBackend

    return TorchBackend.from_checkpoint(path, device, size_px)


def _onnxruntime(path: Path, device: torch.device, size_px: int | None) -> Backend:
    from .onnxruntime_backend import OnnxRuntimeBackend

    return OnnxRuntimeBackend(path, device, size_px)


BACKENDS_BY_SUFFIX: dict[str, Callable[[Path, torch.device, int | None], Backend]] = {
    ".pt": _torch,
    ".pth": _torch,
    ".onnx": _onnxruntime,
}


NOT_YET_SUPPORTED = {
    ".plan": "TensorRT plans are not supported by this version of dermseg; use the .onnx or .pt model",
    ".engine": "TensorRT engines are not supported by this version of dermseg; use the .onnx or .pt model",
}


def open_backend(path: str | Path, device: torch.device | None = None, size_px: int | None = None) -> Backend:
    """Open a model file with the backend its suffix names, on `device` (CPU by default)."""
    path = Path(path)
    if path.suffix.lower() in NOT_YET_SUPPORTED:
        raise BackendUnavailableError(f"{path}: {NOT_YET_SUPPORTED[path.suffix.lower()]}")
    factory = BACKENDS_BY_SUFFIX.get(path.suffix.lower())
    if factory is None:
        known = ", ".join(sorted(BACKENDS_BY_SUFFIX))
        raise UserError(f"{path}: unknown model file type {path.suffix!r} (known: {known})")
    return factory(path, device or torch.device("cpu"), size_px)


__all__ = ["BACKENDS_BY_SUFFIX", "Backend", "open_backend"]
