"""Checking a model file before the processes that will run it start (`dermseg-serve` checks before Ray starts): the
checks that need no GPU, so that a truncated, malformed or hostile file is one line and exit 2 in the command that
was given it, not a traceback from a replica.

    .onnx, .xml           opened on the CPU and closed: header, graph, inputs and outputs, metadata
    .plan, .engine        its sidecar (metadata, versions, SHA-256 of the source ONNX); the plan itself needs the GPU
    .pt, .pth             the checkpoint read (weights_only) and its network built from it, on the CPU
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ModelFileError
from ..util.devices import CPU
from .options import BackendOptions


def check_model_file(path: Path, size_px: int | None = None, options: BackendOptions | None = None) -> None:
    """Raise the error opening `path` would raise (ModelFileError for a bad file; UserError for a bad size, suffix or
    option; BackendUnavailableError for a missing extra), doing only what needs no GPU."""
    from . import BACKENDS_BY_SUFFIX, open_backend

    suffix = path.suffix.lower()
    if suffix not in BACKENDS_BY_SUFFIX:
        open_backend(path, CPU, size_px, options)  # raises the one error for an unknown suffix
    (options or BackendOptions()).check_applies_to(suffix)
    if not path.is_file():
        raise ModelFileError(f"{path}: model file not found")
    if suffix in (".plan", ".engine"):
        from ..tensorrt.sidecar import read_sidecar

        read_sidecar(path)
        return
    threads = None if suffix in (".pt", ".pth") else 1  # PyTorch's threads are the process's: leave them
    with open_backend(path, CPU, size_px, BackendOptions(threads=threads)):
        pass
