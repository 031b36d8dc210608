"""Per-backend choices that travel from the CLI to `open_backend`."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..errors import UserError

ORT_PROVIDERS = ("auto", "cpu", "cuda", "tensorrt")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
"""`--precision`: each backend has its own default (`auto`): FP32 for `.pt`; for `.xml` BF16 where the CPU has native
BF16 units, else FP32. fp16 is PyTorch on CUDA; bf16 PyTorch or OpenVINO on a CPU with native BF16."""
TORCH_SUFFIXES = (".pt", ".pth")
ONNX_SUFFIXES = (".onnx",)
OPENVINO_SUFFIXES = (".xml",)
PLAN_SUFFIXES = (".plan", ".engine")
PRECISIONS_BY_SUFFIX = {**{s: ("fp32", "fp16", "bf16") for s in TORCH_SUFFIXES},
                        **{s: ("fp32", "bf16") for s in OPENVINO_SUFFIXES}}
FLAG_SCOPE = ("--precision is for .pt (fp32, fp16, bf16) and .xml (fp32, bf16); --channels-last, --cuda-graphs and "
              "--compile for .pt; --provider for .onnx; --trust-plan for .plan")


@dataclass(frozen=True)
class BackendOptions:
    """`provider`: ONNX Runtime execution provider (auto = CPU on the CPU, CUDA on a GPU);
    `trust_plan`: let a version-compatible TensorRT plan run the host code it carries;
    `precision`: `PRECISIONS` (auto: the backend's default);
    `channels_last`, `cuda_graphs`, `compile`: the PyTorch backend's fast path;
    `threads`: intra-op threads of ONNX Runtime's or OpenVINO's session, or of PyTorch (process-wide); None: theirs."""

    provider: str = "auto"
    trust_plan: bool = False
    precision: str = "auto"
    channels_last: bool = False
    cuda_graphs: bool = False
    threads: int | None = None
    compile: bool = False
    """.pt: BatchNorm folded, the last cross padded for tensor cores, then `torch.compile` (inductor); with
    `cuda_graphs`, torch.compile's own CUDA graphs (mode reduce-overhead)."""

    def __post_init__(self) -> None:
        if self.provider not in ORT_PROVIDERS:
            raise UserError(f"--provider {self.provider}: use one of {', '.join(ORT_PROVIDERS)}")
        if self.precision not in PRECISIONS:
            raise UserError(f"--precision {self.precision}: use one of {', '.join(PRECISIONS)}")
        if self.threads is not None and self.threads < 1:
            raise UserError(f"--threads {self.threads}: must be at least 1")

    def check_applies_to(self, suffix: str) -> None:
        """Raise UserError for a flag set away from its default that the backend of `suffix` would ignore."""
        suffix = suffix.lower()
        precision_ok = self.precision in PRECISIONS_BY_SUFFIX.get(suffix, ())
        wrong = [flag for flag, is_set, applies in (
            (f"--precision {self.precision}", self.precision != "auto", precision_ok),
            ("--channels-last", self.channels_last, suffix in TORCH_SUFFIXES),
            ("--cuda-graphs", self.cuda_graphs, suffix in TORCH_SUFFIXES),
            ("--compile", self.compile, suffix in TORCH_SUFFIXES),
            (f"--provider {self.provider}", self.provider != "auto", suffix in ONNX_SUFFIXES),
            ("--trust-plan", self.trust_plan, suffix in PLAN_SUFFIXES),
        ) if is_set and not applies]
        if wrong:
            raise UserError(f"{', '.join(wrong)}: not used by a {suffix} model ({FLAG_SCOPE}); leave it out")

    def with_threads(self, threads: int | None) -> BackendOptions:
        return replace(self, threads=threads)
