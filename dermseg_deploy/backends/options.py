"""Per-backend choices that travel from the CLI to `open_backend`."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..errors import UserError

ORT_PROVIDERS = ("auto", "cpu", "cuda", "tensorrt")
TORCH_PRECISIONS = ("fp32", "fp16")
TORCH_SUFFIXES = (".pt", ".pth")
ONNX_SUFFIXES = (".onnx",)
PLAN_SUFFIXES = (".plan", ".engine")
FLAG_SCOPE = ("--precision, --channels-last, --cuda-graphs and --compile are for .pt, --provider for .onnx, --trust-plan "
              "for .plan")


@dataclass(frozen=True)
class BackendOptions:
    """`provider`: ONNX Runtime execution provider (auto = CPU on the CPU, CUDA on a GPU);
    `trust_plan`: let a version-compatible TensorRT plan run the host code it carries;
    `precision`, `channels_last`, `cuda_graphs`, `compile`: the PyTorch backend's fast path on CUDA;
    `threads`: intra-op threads of ONNX Runtime's session, or of PyTorch (process-wide); None: theirs."""

    provider: str = "auto"
    trust_plan: bool = False
    precision: str = "fp32"
    channels_last: bool = False
    cuda_graphs: bool = False
    threads: int | None = None
    compile: bool = False
    """.pt: BatchNorm folded, the last cross padded for tensor cores, then `torch.compile` (inductor); with
    `cuda_graphs`, torch.compile's own CUDA graphs (mode reduce-overhead)."""

    def __post_init__(self) -> None:
        if self.provider not in ORT_PROVIDERS:
            raise UserError(f"--provider {self.provider}: use one of {', '.join(ORT_PROVIDERS)}")
        if self.precision not in TORCH_PRECISIONS:
            raise UserError(f"--precision {self.precision}: use one of {', '.join(TORCH_PRECISIONS)}")
        if self.threads is not None and self.threads < 1:
            raise UserError(f"--threads {self.threads}: must be at least 1")

    def check_applies_to(self, suffix: str) -> None:
        """Raise UserError for a flag set away from its default that the backend of `suffix` would ignore."""
        suffix = suffix.lower()
        wrong = [flag for flag, is_set, suffixes in (
            (f"--precision {self.precision}", self.precision != "fp32", TORCH_SUFFIXES),
            ("--channels-last", self.channels_last, TORCH_SUFFIXES),
            ("--cuda-graphs", self.cuda_graphs, TORCH_SUFFIXES),
            ("--compile", self.compile, TORCH_SUFFIXES),
            (f"--provider {self.provider}", self.provider != "auto", ONNX_SUFFIXES),
            ("--trust-plan", self.trust_plan, PLAN_SUFFIXES),
        ) if is_set and suffix not in suffixes]
        if wrong:
            raise UserError(f"{', '.join(wrong)}: not used by a {suffix} model ({FLAG_SCOPE}); leave it out")

    def with_threads(self, threads: int | None) -> BackendOptions:
        return replace(self, threads=threads)
