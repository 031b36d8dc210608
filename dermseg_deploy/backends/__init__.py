"""Backends by model-file suffix: `.pt` (PyTorch), `.onnx` (ONNX Runtime), `.xml` (OpenVINO), `.plan`/`.engine`
(TensorRT).

Host backends (ONNX Runtime on the CPU, OpenVINO) take and return NumPy arrays; device backends (PyTorch, ONNX Runtime's
GPU providers, TensorRT) torch tensors on their device (`Backend.on_device`). Only the `.pt` and TensorRT
backends, and ONNX Runtime on a GPU, import torch.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ModelFileError, UserError
from ..util.devices import Device, as_device
from ..util.extras import require_torch
from .options import BackendOptions

if TYPE_CHECKING:
    from .base import Backend


def _torch(path: Path, device: Device, size_px: int | None, options: BackendOptions) -> Backend:
    require_torch(f"{path} (a PyTorch checkpoint)")
    from .torch_backend import TorchBackend

    return TorchBackend.from_checkpoint(path, device, size_px, options)


def _onnxruntime(path: Path, device: Device, size_px: int | None, options: BackendOptions) -> Backend:
    from .onnxruntime_backend import OnnxRuntimeBackend, OnnxRuntimeCudaBackend

    if device.is_cuda:
        require_torch(f"{path} on {device} (ONNX Runtime on a GPU reads and writes torch CUDA tensors)")
        return OnnxRuntimeCudaBackend(path, device, size_px, options.provider, options.threads)
    return OnnxRuntimeBackend(path, device, size_px, options.provider, options.threads)


def _openvino(path: Path, device: Device, size_px: int | None, options: BackendOptions) -> Backend:
    from .openvino_backend import OpenVinoBackend

    return OpenVinoBackend(path, device, size_px, options.precision, options.threads)


def _tensorrt(path: Path, device: Device, size_px: int | None, options: BackendOptions) -> Backend:
    from ..tensorrt.availability import require_tensorrt
    from ..tensorrt.sidecar import read_sidecar

    if not path.is_file():
        raise ModelFileError(f"{path}: TensorRT plan not found")
    read_sidecar(path)  # a malformed sidecar is the file's fault, whether or not TensorRT is installed here
    require_tensorrt(f"{path} (a TensorRT plan)")
    require_torch(f"{path} (a TensorRT plan, whose buffers are torch CUDA tensors)")
    from .tensorrt_backend import TensorRTBackend

    return TensorRTBackend(path, device, size_px, options.trust_plan)


BackendFactory = Callable[[Path, Device, "int | None", BackendOptions], "Backend"]
BACKENDS_BY_SUFFIX: dict[str, BackendFactory] = {
    ".pt": _torch,
    ".pth": _torch,
    ".onnx": _onnxruntime,
    ".xml": _openvino,
    ".plan": _tensorrt,
    ".engine": _tensorrt,
}


def open_backend(
    path: str | Path, device: Device | str | Any = None, size_px: int | None = None, options: BackendOptions | None = None
) -> Backend:
    """Open a model file with the backend its suffix names, on `device` (a Device, `cpu`/`cuda:N`, or a
    torch.device; the CPU by default)."""
    path = Path(path)
    factory = BACKENDS_BY_SUFFIX.get(path.suffix.lower())
    if factory is None:
        known = ", ".join(sorted(BACKENDS_BY_SUFFIX))
        raise UserError(f"{path}: unknown model file type {path.suffix!r} (known: {known})")
    options = options or BackendOptions()
    options.check_applies_to(path.suffix)
    return factory(path, as_device(device), size_px, options)


def __getattr__(name: str) -> Any:
    """`Backend` is imported on first use (it needs NumPy; `--help` reads only the options)."""
    if name == "Backend":
        from .base import Backend

        return Backend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["BACKENDS_BY_SUFFIX", "Backend", "BackendOptions", "open_backend"]
