"""The backend interface: one lifecycle for every model format."""

from __future__ import annotations

import abc
from pathlib import Path
from types import TracebackType

import torch

from ..metadata import ModelMetadata


class Backend(abc.ABC):
    """Runs a segmentation model: `infer((N,3,S,S) float32 on self.device) -> (N,1,S,S) float32 logits`.

    A backend owns its session/context/stream; use it as a context manager so that it is released.
    """

    metadata: ModelMetadata
    device: torch.device
    name: str
    path: Path | None = None
    """The model file (None for a model built in memory, as during training)."""
    input_dtype: torch.dtype = torch.float32
    """The dtype `infer` consumes without a conversion (preprocessing writes straight into it)."""

    @abc.abstractmethod
    def infer(self, images: torch.Tensor) -> torch.Tensor:
        """Logits for a batch of preprocessed images."""

    def close(self) -> None:
        """Release sessions and device memory; the default has nothing to release."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def describe(self) -> str:
        from ..devices import describe_device

        return f"{self.name} on {describe_device(self.device)}"
