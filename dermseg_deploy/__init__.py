"""dermseg deployment: model files, preprocessing, backends, the segmentation pipeline.

A lazy facade over the layers (docs/explanations/layers.md): `import dermseg_deploy` loads only the error types, the model
metadata and the version; `Segmenter`, `open_backend` and `export_checkpoint` are imported on first use, so that
`--help` and the torch-free runtime stay light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import (
    BackendUnavailableError,
    CheckFailedError,
    DermsegError,
    InputImageError,
    ModelFileError,
    UserError,
)
from .model.metadata import ModelMetadata
from .version import __version__

if TYPE_CHECKING:
    from .backends import open_backend
    from .export.chain import export_checkpoint
    from .segment.segmenter import QualityMask, Segmenter

LAZY = {
    "Segmenter": ("segment.segmenter", "Segmenter"),
    "QualityMask": ("segment.segmenter", "QualityMask"),
    "open_backend": ("backends", "open_backend"),
    "export_checkpoint": ("export.chain", "export_checkpoint"),
}


def __getattr__(name: str) -> Any:
    """The names of `LAZY`, imported on first use (`export_checkpoint` needs the `export` extra)."""
    if name in LAZY:
        import importlib

        module, attribute = LAZY[name]
        return getattr(importlib.import_module(f".{module}", __name__), attribute)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BackendUnavailableError",
    "CheckFailedError",
    "DermsegError",
    "InputImageError",
    "ModelFileError",
    "ModelMetadata",
    "QualityMask",
    "Segmenter",
    "UserError",
    "__version__",
    "export_checkpoint",
    "open_backend",
]
