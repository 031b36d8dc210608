"""A ResNet34-UNet with random weights, exported to ONNX, for speed measurements (weights do not change speed)."""

from __future__ import annotations

from pathlib import Path

import torch

from dermseg_deploy.export.onnx_export import export_onnx
from dermseg_deploy.model.metadata import ModelMetadata
from dermseg_deploy.model.network import ResNet34UNet


def random_onnx(folder: Path, size_px: int, seed: int = 0) -> Path:
    """`folder/random-<size>.onnx`, exported once and reused."""
    path = folder / f"random-{size_px}.onnx"
    if not path.is_file():
        torch.manual_seed(seed)
        export_onnx(ResNet34UNet().eval(), ModelMetadata(size_px=size_px, train_data="random weights (benchmark)"), path)
    return path
