"""The backend interface: one lifecycle for every model format, and the array type each takes.

Host backends (ONNX Runtime on the CPU) take and return NumPy arrays; device backends (PyTorch, ONNX Runtime's
CUDA and TensorRT providers, TensorRT) take and return torch tensors on their device. `infer_host` runs either
on NumPy, which is what the host stages call.
"""

from __future__ import annotations

import abc
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import numpy as np

from ..model.metadata import ModelMetadata
from ..util.devices import Device

BackendT = TypeVar("BackendT", bound="Backend")


class Backend(abc.ABC):
    """Runs a segmentation model: `infer((N,3,S,S) float32) -> (N,1,S,S) float32 logits`, as NumPy arrays for a host
    backend and as torch tensors on `device` for a device backend (`on_device`).

    A backend owns its session/context/stream; use it as a context manager so that it is released.
    """

    metadata: ModelMetadata
    device: Device
    name: str
    path: Path | None = None
    """The model file (None for a model built in memory, as during training)."""
    on_device: bool = False
    """True for a device backend: `infer` takes and returns torch tensors on `device`."""
    input_dtype: Any = None
    """Device backends: the torch dtype `infer` consumes without a conversion (the CUDA stages preprocess straight
    into it); None for float32."""
    arithmetic: str = "fp32"
    """The precision most of the network computes in (fp32, fp16, bf16, int8): what the bench's share of peak
    compares with."""
    notice: str | None = None
    """A choice the backend made for the user (`--precision auto`'s), which commands say when work starts."""

    @abc.abstractmethod
    def infer(self, images: Any) -> Any:
        """Logits for a batch of preprocessed images (NumPy for a host backend, torch for a device backend)."""

    def infer_host(self, images: np.ndarray) -> np.ndarray:
        """Logits as a float32 NumPy array for a NumPy batch, whatever array type `infer` takes."""
        if not self.on_device:
            return self.infer(images)
        import torch  # a device backend: torch is loaded already

        return self.infer(torch.from_numpy(np.ascontiguousarray(images))).float().cpu().numpy()

    def close(self) -> None:
        """Release sessions and device memory; the default has nothing to release."""

    def __enter__(self: BackendT) -> BackendT:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def describe(self) -> str:
        from ..util.devices import describe_device

        return f"{self.name} on {describe_device(self.device)}"
