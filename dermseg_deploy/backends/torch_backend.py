"""PyTorch backend for `.pt` checkpoints: a device backend (torch tensors in and out, on the CPU or a GPU).

FP32 eager by default; on CUDA it can run FP16 with channels-last memory and replay CUDA graphs
captured once per batch shape (the fast path where TensorRT is absent); on a CPU with native BF16 units (AMX or
AVX-512 BF16), BF16 autocast with channels-last memory. Needs the `train` extra.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from ..errors import BackendUnavailableError, UserError
from ..model.checkpoint import load_checkpoint, model_from_checkpoint
from ..model.metadata import ModelMetadata
from ..model.model_transforms import prepare_for_compile
from ..model.network import ResNet34UNet
from ..model.sizes import require_valid_size
from ..util import cpu
from ..util.devices import Device, as_device
from .base import Backend
from .options import BackendOptions

GRAPH_WARMUP_RUNS = 3


def check_bf16_on_cpu(device: Device) -> None:
    """`--precision bf16` is PyTorch's BF16 autocast on a CPU with native BF16 units; anywhere else, one line."""
    if device.is_cuda:
        raise UserError("--precision bf16 runs PyTorch's BF16 autocast on the CPU; on CUDA use --precision fp16")
    if not cpu.native_bf16():
        raise BackendUnavailableError("--precision bf16: this CPU has no native BF16 units (AMX or AVX-512 BF16), so "
                                      "PyTorch would emulate BF16, slower than FP32; use --precision fp32")


class TorchBackend(Backend):
    """PyTorch inference of a dermseg checkpoint; any input size that is a multiple of 32."""

    on_device = True

    def __init__(
        self, model: torch.nn.Module, metadata: ModelMetadata, device: Device | torch.device,
        options: BackendOptions | None = None,
    ) -> None:
        """Wrap an nn.Module (moved to `device`, eval mode); `from_checkpoint` opens a `.pt` file."""
        options = options or BackendOptions()
        require_valid_size(metadata.size_px)
        self.device = as_device(device)
        torch_device = self.device.to_torch()
        if options.cuda_graphs and not self.device.is_cuda:
            raise BackendUnavailableError(f"CUDA graphs were requested but the device is {device}")
        self.precision = "fp32" if options.precision == "auto" else options.precision
        self.autocast_bf16 = self.precision == "bf16"
        if self.autocast_bf16:
            check_bf16_on_cpu(self.device)
        channels_last = options.channels_last or self.autocast_bf16  # oneDNN's BF16 kernels want NHWC
        self.input_dtype = torch.float16 if self.precision == "fp16" else torch.float32
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        if self.device.is_cuda and not torch.are_deterministic_algorithms_enabled():
            # Fixed input sizes: let cuDNN time its kernels once and keep the fastest (a process-wide setting,
            # left alone when the caller asked for deterministic algorithms, as `dermseg-train --deterministic` does).
            torch.backends.cudnn.benchmark = True
        model = model.to(torch_device).eval()
        if options.compile and isinstance(model, ResNet34UNet):
            model = prepare_for_compile(model)
        self.model = model
        if self.input_dtype != torch.float32:
            self.model = self.model.to(self.input_dtype)
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.compiled = options.compile
        self.compile_seconds: float | None = None
        """Seconds the first batch took with `compile` (tracing, code generation and the run itself)."""
        if options.compile:
            mode = "reduce-overhead" if options.cuda_graphs else "default"
            self.model = torch.compile(self.model, mode=mode)  # type: ignore[assignment]
        if options.threads is not None:
            torch.set_num_threads(options.threads)  # process-wide: PyTorch has no per-model thread pool
        self.metadata = metadata
        self.torch_device = torch_device
        self.cuda_graphs = options.cuda_graphs and not options.compile  # compile brings its own CUDA graphs
        self._graphs: dict[tuple[int, ...], tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor]] = {}
        self.arithmetic = self.precision
        parts = [f"pytorch-{self.precision}"]
        parts += ["channels-last"] * channels_last + ["cuda-graphs"] * options.cuda_graphs
        parts += ["compiled"] * options.compile
        self.name = "-".join(parts)

    @classmethod
    def from_checkpoint(
        cls, path: str | Path, device: Device | torch.device, size_px: int | None = None, options: BackendOptions | None = None
    ) -> TorchBackend:
        if size_px is not None:
            require_valid_size(size_px)
        checkpoint = load_checkpoint(path)
        metadata = checkpoint.metadata
        if size_px is not None:
            metadata = metadata.with_updates(size_px=size_px)
        backend = cls(model_from_checkpoint(checkpoint, str(path)), metadata, device, options)
        backend.path = Path(path)
        return backend

    def _prepare(self, images: torch.Tensor) -> torch.Tensor:
        return images.to(self.torch_device, self.input_dtype).contiguous(memory_format=self.memory_format)

    def _graph(self, shape: tuple[int, ...]) -> tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor]:
        """Capture the model for one input shape (after warm-up runs on a side stream, as PyTorch requires)."""
        if shape not in self._graphs:
            static_in = torch.zeros(shape, dtype=self.input_dtype, device=self.torch_device)
            static_in = static_in.contiguous(memory_format=self.memory_format)
            side = torch.cuda.Stream(self.torch_device)
            side.wait_stream(torch.cuda.current_stream(self.torch_device))
            with torch.cuda.stream(side):
                for _ in range(GRAPH_WARMUP_RUNS):
                    self.model(static_in)
            torch.cuda.current_stream(self.torch_device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_out = self.model(static_in)
            self._graphs[shape] = (graph, static_in, static_out)
        return self._graphs[shape]

    @torch.inference_mode()
    def infer(self, images: torch.Tensor) -> torch.Tensor:
        x = self._prepare(images)
        if self.autocast_bf16:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return self._infer_compiled(x) if self.compiled else self.model(x).float()
        if self.compiled:
            return self._infer_compiled(x)
        if not self.cuda_graphs:
            return self.model(x).float()
        graph, static_in, static_out = self._graph(tuple(x.shape))
        static_in.copy_(x)
        graph.replay()
        return static_out.float().clone() if static_out.dtype == torch.float32 else static_out.float()

    def _infer_compiled(self, x: torch.Tensor) -> torch.Tensor:
        """The compiled model; its outputs are copied, since torch.compile's CUDA graphs reuse their output buffers
        on the next call while this batch may still be postprocessed. The first call's time is kept."""
        start = time.perf_counter()
        logits = self.model(x)
        logits = logits.clone() if logits.dtype == torch.float32 else logits.float()
        if self.compile_seconds is None:
            if self.device.is_cuda:
                torch.cuda.synchronize(self.torch_device)
            self.compile_seconds = time.perf_counter() - start
        return logits

    def close(self) -> None:
        self._graphs.clear()
