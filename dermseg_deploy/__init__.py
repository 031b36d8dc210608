"""dermseg deployment: model files, preprocessing, backends, the segmentation pipeline."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

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
from .segmenter import Segmenter  # noqa: E402

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
