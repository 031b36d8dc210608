"""dermseg deployment: model files, preprocessing, backends, the segmentation pipeline."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("dermseg")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+source"

from .errors import (  # noqa: E402
    BackendUnavailableError,
    CheckFailedError,
    DermsegError,
    InputImageError,
    ModelFileError,
    UserError,
)
from .metadata import ModelMetadata  # noqa: E402

if TYPE_CHECKING:
    from .segmenter import Segmenter


def __getattr__(name: str) -> Any:
    """`Segmenter` is imported on first use: `import dermseg_deploy` (and every command's --help) stays free of
    torch."""
    if name == "Segmenter":
        from .segmenter import Segmenter

        return Segmenter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BackendUnavailableError",
    "CheckFailedError",
    "DermsegError",
    "InputImageError",
    "ModelFileError",
    "ModelMetadata",
    "Segmenter",
    "UserError",
    "__version__",
]
