"""PyTorch backend for `.pt` checkpoints (imports the model definition lazily)."""

from __future__ import annotations

from pathlib import Path

import torch

from ..checkpoint import load_checkpoint, model_from_checkpoint
from ..errors import UserError
from ..metadata import ModelMetadata
from .base import Backend


def _check_size(size_px: int) -> None:
    if size_px <= 0 or size_px % 32:
        raise UserError(f"--size {size_px}: must be a positive multiple of 32")


class TorchBackend(Backend):
    """Eager PyTorch FP32 inference of a dermseg checkpoint; any input size that is a multiple of 32."""

    accepts_any_size = True

    def __init__(self, model: torch.nn.Module, metadata: ModelMetadata, device: torch.device) -> None:
        """Wrap an nn.Module (moved to `device`, eval mode); `from_checkpoint` opens a `.pt` file."""
        _check_size(metadata.size_px)
        self.model = model.to(device).eval()
        self.metadata = metadata
        self.device = device
        self.name = "pytorch-fp32"

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: torch.device, size_px: int | None = None) -> TorchBackend:
        if size_px is not None:
            _check_size(size_px)
        checkpoint = load_checkpoint(path)
        metadata = checkpoint.metadata
        if size_px is not None:
            metadata = metadata.with_updates(size_px=size_px)
        return cls(model_from_checkpoint(checkpoint, str(path)), metadata, device)

    @torch.inference_mode()
    def infer(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images.to(self.device, torch.float32)).float()
