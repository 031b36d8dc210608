"""Whether TensorRT can be imported here, and the one message that says how to get it."""

from __future__ import annotations

import importlib.util

from ..errors import BackendUnavailableError
from ..util.extras import TENSORRT_EXTRA, extra_hint

INSTALL_HINT = (
    f"{extra_hint(TENSORRT_EXTRA)} (NVIDIA's tensorrt wheels, from pypi.nvidia.com where PyPI has none for "
    "your CUDA), on a machine with an NVIDIA GPU"
)


def tensorrt_installed() -> bool:
    """True when the `tensorrt` Python package (not just its type stubs) is importable."""
    spec = importlib.util.find_spec("tensorrt")
    return spec is not None and spec.origin is not None and not spec.origin.endswith(".pyi")


def require_tensorrt(what: str) -> None:
    """Raise BackendUnavailableError naming `what` needed TensorRT and how to install it."""
    if not tensorrt_installed():
        raise BackendUnavailableError(f"{what} needs TensorRT, which is not installed: {INSTALL_HINT}")
