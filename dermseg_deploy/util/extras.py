"""The one policy for what an install lacks: a command or option that needs an extra stops with one line that
names it and the `pip install` that adds it (BackendUnavailableError, exit 4), never a traceback.

    runtime (pip install dermseg)   NumPy, Pillow, ONNX Runtime, SciPy, click, tqdm, zlib-ng: run, eval, bench's CPU
                                    rows, the Python API on .onnx files
    [openvino]                      OpenVINO: .xml models (FP32, BF16 and INT8 on the CPU's matrix units)
    [train]                         torch, torchvision: training, .pt models, --device cuda and the CUDA stages
    [export]                        [train] + onnx, onnxscript, ModelOpt AutoCast and what it imports
    [ray], [triton], [plot]         Ray Data and Serve; the Triton client; matplotlib figures
    [tensorrt]                      NVIDIA's TensorRT (from NVIDIA's index)
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from ..errors import BackendUnavailableError

TRAIN_EXTRA = "train"
OPENVINO_EXTRA = "openvino"
EXPORT_EXTRA = "export"
GPU_EXTRA = "gpu"
RAY_EXTRA = "ray"
TRITON_EXTRA = "triton"
PLOT_EXTRA = "plot"
TENSORRT_EXTRA = "tensorrt"


def extra_hint(extra: str) -> str:
    """`pip install 'dermseg[<extra>]'`."""
    return f"pip install 'dermseg[{extra}]'"


def require_module(module: str, what: str, hint: str) -> ModuleType:
    """Import `module`, or raise BackendUnavailableError: `<what> needs <package>, which is not installed: <hint>`.

    Only the module itself (or its package) being absent is an unavailable extra; any other ImportError is a broken
    install and propagates as it is."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package = module.split(".")[0]
        missing = (exc.name or package).split(".")[0]
        if missing != package:
            raise
        raise BackendUnavailableError(f"{what} needs {package}, which is not installed: {hint}") from exc


def require_torch(what: str) -> ModuleType:
    """torch, or the one line that says `what` needs the train extra."""
    return require_module("torch", what, extra_hint(TRAIN_EXTRA))


def require_installed(modules: tuple[str, ...], what: str, extra: str) -> None:
    """Raise BackendUnavailableError naming the extra unless every module of `modules` can be found (checked without
    importing them, so that a command can say it before its slow imports)."""
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        raise BackendUnavailableError(f"{what} needs {' and '.join(missing)}, which {verb} not installed: "
                                      f"{extra_hint(extra)}")
