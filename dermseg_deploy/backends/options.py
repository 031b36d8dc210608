"""Per-backend choices that travel from the CLI to `open_backend`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError

ORT_PROVIDERS = ("auto", "cpu", "cuda", "tensorrt")
TORCH_PRECISIONS = ("fp32", "fp16")


@dataclass(frozen=True)
class BackendOptions:
    """`provider`: ONNX Runtime execution provider (auto = CPU on the CPU, CUDA on a GPU);
    `trust_plan`: let a version-compatible TensorRT plan run its host code;
    `precision`, `channels_last`, `cuda_graphs`: the PyTorch backend's fast path on CUDA;
    `ort_cache_dir`: where ONNX Runtime's TensorRT provider keeps its engine and timing caches."""

    provider: str = "auto"
    trust_plan: bool = False
    precision: str = "fp32"
    channels_last: bool = False
    cuda_graphs: bool = False
    ort_cache_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.provider not in ORT_PROVIDERS:
            raise UserError(f"--provider {self.provider}: use one of {', '.join(ORT_PROVIDERS)}")
        if self.precision not in TORCH_PRECISIONS:
            raise UserError(f"--precision {self.precision}: use one of {', '.join(TORCH_PRECISIONS)}")
