"""`--engine` specs: a model file, optionally with a prefix that picks a variant.

    model.plan / model.onnx / model.pt    the file's own backend (a .pt runs FP32 eager, TF32 off)
    model.xml                             OpenVINO on the CPU at --precision auto (BF16 where native, else FP32)
    fp32:model.xml / bf16:model.xml       OpenVINO at that precision (an INT8 IR keeps its INT8 layers)
    bf16:model.pt                         PyTorch BF16 autocast, channels-last, on a CPU with native BF16
    tf32:model.pt                         PyTorch FP32 eager with TF32 on (CUDA)
    fp16:model.pt                         the PyTorch fast path: FP16, channels-last, CUDA graphs on CUDA
    compiled:model.pt                     that fast path with BatchNorm folded, the last block padded, and
                                          torch.compile (FP32 on the CPU)
    ort-tensorrt:model.fp16.onnx          ONNX Runtime's TensorRT provider (ort-cuda: its CUDA provider)
    naive:model.pt                        the naive baseline: PIL, eager FP32, one image at a time
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..backends import BackendOptions
from ..errors import UserError
from ..util.devices import Device

PREFIXES = ("naive", "tf32", "fp16", "bf16", "fp32", "compiled", "ort-tensorrt", "ort-cuda")


@dataclass(frozen=True)
class EngineSpec:
    text: str
    path: Path
    variant: str = ""
    options: BackendOptions = field(default_factory=BackendOptions)
    tf32: bool = False

    @property
    def naive(self) -> bool:
        return self.variant == "naive"


def parse_engine(text: str, device: Device) -> EngineSpec:
    """Turn `[variant:]path` into an EngineSpec; variants that need a .pt say so."""
    variant, _, rest = text.partition(":")
    if variant not in PREFIXES:
        variant, rest = "", text
    path = Path(rest)
    if not path.is_file():
        raise UserError(f"--engine {text}: {path} not found")
    if variant in ("naive", "tf32", "fp16", "compiled") and path.suffix.lower() not in (".pt", ".pth"):
        raise UserError(f"--engine {text}: the {variant} variant runs a PyTorch checkpoint (.pt)")
    if variant.startswith("ort-") and path.suffix.lower() != ".onnx":
        raise UserError(f"--engine {text}: the {variant} variant runs an ONNX file")
    if variant == "bf16" and path.suffix.lower() not in (".pt", ".pth", ".xml"):
        raise UserError(f"--engine {text}: the bf16 variant runs a PyTorch checkpoint (.pt) or an OpenVINO IR (.xml)")
    if variant == "fp32" and path.suffix.lower() != ".xml":
        raise UserError(f"--engine {text}: the fp32 variant runs an OpenVINO IR (.xml); a .pt or .onnx runs FP32 as it is")
    cuda = device.is_cuda
    options = BackendOptions()
    if variant == "fp16":
        # channels-last on the CPU too: PyTorch's half-precision convolutions there are 30x slower in NCHW (5.6 s
        # against 0.17 s per 64 px image on a Zen 3)
        options = BackendOptions(precision="fp16", channels_last=True, cuda_graphs=cuda)
    elif variant == "compiled":
        options = BackendOptions(precision="fp16" if cuda else "fp32", channels_last=cuda, cuda_graphs=cuda, compile=True)
    elif variant.startswith("ort-"):
        options = BackendOptions(provider=variant.removeprefix("ort-"))
    elif variant in ("bf16", "fp32"):
        options = BackendOptions(precision=variant)
    return EngineSpec(text, path, variant, options, tf32=variant == "tf32")


@contextlib.contextmanager
def tf32_enabled(enabled: bool) -> Iterator[None]:
    """TF32 for matmuls and cuDNN convolutions on or off inside the block (cuDNN's default is on: FP32
    baselines turn it off); the previous settings come back afterwards, whatever happens. Without torch loaded (the
    runtime install's CPU rows) there is nothing to set."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    previous = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = previous
