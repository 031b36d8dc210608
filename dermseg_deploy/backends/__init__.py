"""Backends by model-file suffix: `.pt` (PyTorch), `.onnx` (ONNX Runtime), `.plan`/`.engine` (TensorRT)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ModelFileError, UserError
from .options import BackendOptions

if TYPE_CHECKING:
    import torch

    from .base import Backend


def _torch(path: Path, device: torch.device, size_px: int | None, options: BackendOptions) -> Backend:
    from .torch_backend import TorchBackend

    return TorchBackend.from_checkpoint(path, device, size_px, options)


def _onnxruntime(path: Path, device: torch.device, size_px: int | None, options: BackendOptions) -> Backend:
    from .onnxruntime_backend import OnnxRuntimeBackend

    return OnnxRuntimeBackend(path, device, size_px, options.provider, options.threads)


def _tensorrt(path: Path, device: torch.device, size_px: int | None, options: BackendOptions) -> Backend:
    from ..tensorrt.availability import require_tensorrt
    from ..tensorrt.sidecar import read_sidecar

    if not path.is_file():
        raise ModelFileError(f"{path}: TensorRT plan not found")
    read_sidecar(path)  # a malformed sidecar is the file's fault, whether or not TensorRT is installed here
    require_tensorrt(f"{path} (a TensorRT plan)")
    from ..tensorrt.engine_runtime import TensorRTBackend

    return TensorRTBackend(path, device, size_px, options.trust_plan)


BackendFactory = Callable[[Path, "torch.device", int | None, BackendOptions], "Backend"]
BACKENDS_BY_SUFFIX: dict[str, BackendFactory] = {
    ".pt": _torch,
    ".pth": _torch,
    ".onnx": _onnxruntime,
    ".plan": _tensorrt,
    ".engine": _tensorrt,
}


def open_backend(
    path: str | Path, device: torch.device | None = None, size_px: int | None = None, options: BackendOptions | None = None
) -> Backend:
    """Open a model file with the backend its suffix names, on `device` (CPU by default)."""
    path = Path(path)
    factory = BACKENDS_BY_SUFFIX.get(path.suffix.lower())
    if factory is None:
        known = ", ".join(sorted(BACKENDS_BY_SUFFIX))
        raise UserError(f"{path}: unknown model file type {path.suffix!r} (known: {known})")
    options = options or BackendOptions()
    options.check_applies_to(path.suffix)
    if device is None:
        import torch

        device = torch.device("cpu")
    return factory(path, device, size_px, options)


def __getattr__(name: str) -> Any:
    """`Backend` is imported on first use (it needs torch; the options and `open_backend` do not)."""
    if name == "Backend":
        from .base import Backend

        return Backend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["BACKENDS_BY_SUFFIX", "Backend", "BackendOptions", "open_backend"]
