"""ONNX Runtime backend for `.onnx` files: the CPU provider on NumPy (a host backend), or the CUDA or TensorRT
provider on torch CUDA tensors (a device backend, `OnnxRuntimeCudaBackend`) when asked for and really active."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BackendUnavailableError, DermsegError, InferenceError, ModelFileError, UserError, one_line
from ..model.metadata import ONNX_METADATA_KEY, ModelMetadata
from ..model.sizes import require_valid_size
from ..util.devices import Device, as_device, cuda_available
from ..util.extras import GPU_EXTRA, extra_hint
from .base import Backend
from .graph_io import check_graph_io, run_in_fixed_batches

CPU_PROVIDER = "CPUExecutionProvider"
CUDA_PROVIDER = "CUDAExecutionProvider"
TENSORRT_PROVIDER = "TensorrtExecutionProvider"
PROVIDER_BY_NAME = {"cpu": CPU_PROVIDER, "cuda": CUDA_PROVIDER, "tensorrt": TENSORRT_PROVIDER}
EXACT_INT8_PRODUCTS = ("session.x64quantprecision", "1")
"""An INT8 file's integer products without overflow on x86 CPUs that have no VNNI (AVX2 alone, or AVX-512 without
VNNI: an AMD Zen 3, an Intel CPU before Ice Lake): ONNX Runtime's faster U8S8 kernels there add pairs of products in
16 bits, which saturate. Measured with the shipped model on a Zen 3, 300 ISIC images: logits off by up to 4.2 (31
steps of its output scale) and masks at mean IoU 0.974 (worst 0.81) against the exact arithmetic, which ONNX Runtime
Web and VNNI CPUs compute; with this setting within two steps, for 1.25x the network's time
(benchmarks/results/int8-exactness-2026-12-08/). ONNX Runtime applies it only where the overflow can happen, and FP32
files ignore it."""


def _import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise BackendUnavailableError("onnxruntime is not installed: pip install dermseg (it comes with the runtime)") from exc
    return onnxruntime


MODEL_FILE_ERRORS = ("InvalidProtobuf", "InvalidGraph", "NoSuchFile", "NoModel", "NotImplemented", "InvalidArgument",
                     "ModelRequiresCompilation")
"""ONNX Runtime's exception classes (onnxruntime.capi.onnxruntime_pybind11_state) that mean a bad model file."""
RUNTIME_ERRORS = ("Fail", "EPFail", "RuntimeException", "EngineError", "DeviceReset", "NotFound")
"""Those that mean the runtime or its execution provider could not do its work (start-up, memory, device)."""
MODEL_FILE_MARKERS = ("load model from", "external data", "initializer", "node (", "shapeinferenceerror",
                      "type error", "opset", "protobuf", "invalid model", "graph")
"""Words in a `Fail` at session start that put the fault in the model file (a refused external-data path, a node
or initializer ONNX Runtime cannot build), which is exit 2 like any bad model file, not exit 4."""


def onnxruntime_errors(ort: Any) -> tuple[type[BaseException], ...]:
    """The exception classes ONNX Runtime raises from its C++ core (each a plain Exception subclass)."""
    state = ort.capi.onnxruntime_pybind11_state
    names = (*MODEL_FILE_ERRORS, *RUNTIME_ERRORS)
    return tuple(getattr(state, name) for name in names if isinstance(getattr(state, name, None), type))


def session_error(exc: BaseException, path: Path) -> DermsegError:
    """A session that could not be created: a bad model file (exit 2), or a runtime/provider failure (exit 4)."""
    name, message = type(exc).__name__, one_line(exc)
    if name in MODEL_FILE_ERRORS or (name == "Fail" and any(word in message.lower() for word in MODEL_FILE_MARKERS)):
        return ModelFileError(f"{path}: ONNX Runtime cannot load it ({name}: {message})")
    return BackendUnavailableError(f"{path}: ONNX Runtime could not start a session ({name}: {message})")


def read_onnx_metadata(session: Any, source: str) -> ModelMetadata:
    """The dermseg input spec from an ONNX Runtime session's custom metadata."""
    custom = session.get_modelmeta().custom_metadata_map
    if ONNX_METADATA_KEY not in custom:
        raise ModelFileError(f"{source}: no {ONNX_METADATA_KEY!r} metadata; export it with dermseg-export")
    try:
        return ModelMetadata.from_json(custom[ONNX_METADATA_KEY])
    except ModelFileError as exc:
        raise ModelFileError(f"{source}: {exc}") from exc


def provider_name(provider: str, device: Device) -> str:
    """`auto` resolved for `device` (the CPU provider on the CPU, CUDA's on a GPU), checked against the device."""
    name = provider if provider != "auto" else ("cuda" if device.is_cuda else "cpu")
    if name not in PROVIDER_BY_NAME:
        raise UserError(f"--provider {provider}: use auto, cpu, cuda or tensorrt")
    if name != "cpu" and not device.is_cuda and not cuda_available():
        raise BackendUnavailableError(f"--provider {name} runs on a CUDA GPU, and CUDA is not available on this "
                                      "machine; use --provider cpu")
    if device.is_cuda != (name != "cpu"):
        raise UserError(f"--provider {name} does not run on device {device}; use --device cpu with the CPU "
                        "provider and a CUDA device with the cuda or tensorrt provider")
    return name


class OnnxRuntimeBackend(Backend):
    """ONNX Runtime on the CPU: a fixed square input size, a dynamic (or fixed) batch; NumPy in and out."""

    def __init__(self, path: str | Path, device: Device | str | Any = None, size_px: int | None = None,
                 provider: str = "auto", threads: int | None = None) -> None:
        """`provider`: auto (CPU on the CPU, CUDA on a GPU), cpu, cuda or tensorrt (which keeps its engines and
        timing cache in `<model>.ort-trt-cache/` beside the model); `threads`: intra-op threads (None: one per core)."""
        ort = _import_onnxruntime()
        path = Path(path)
        device = as_device(device)
        if not path.is_file():
            raise ModelFileError(f"{path}: ONNX model not found")
        name = provider_name(provider, device)
        wanted = PROVIDER_BY_NAME[name]
        if wanted not in ort.get_available_providers():
            raise BackendUnavailableError(
                f"the {wanted} was requested but this onnxruntime does not have it "
                f"(available: {', '.join(ort.get_available_providers())}); {extra_hint(GPU_EXTRA)}"
            )
        self._errors = onnxruntime_errors(ort)

        def session(exact_products: bool) -> Any:
            options = ort.SessionOptions()
            options.log_severity_level = 3
            if exact_products:
                options.add_session_config_entry(*EXACT_INT8_PRODUCTS)
            if threads is not None:
                options.intra_op_num_threads = threads
                options.inter_op_num_threads = 1
            return ort.InferenceSession(str(path), sess_options=options,
                                        providers=self._providers(name, path, device.index or 0))

        try:
            self.session = session(exact_products=True)
        except self._errors as refused:
            try:  # ONNX Runtime's rewrite for exact products fails on some INT8 files that load without it
                self.session = session(exact_products=False)
            except self._errors as exc:
                raise session_error(exc, path) from exc
            warnings.warn(f"{path}: ONNX Runtime cannot compute this file's INT8 products exactly ({one_line(refused)}); "
                          "it runs with its fast kernels, which saturate on x86 CPUs without VNNI (AVX2 alone): compare "
                          "its masks with the FP32 file's on this machine", stacklevel=2)
        active = self.session.get_providers()
        if not active or active[0] != wanted:
            raise BackendUnavailableError(
                f"the {wanted} was requested but ONNX Runtime did not activate it (active: {', '.join(active)})"
            )
        self.metadata = read_onnx_metadata(self.session, str(path))
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        declared = check_graph_io(inputs, outputs, path)
        names_in, names_out = [i.name for i in inputs], [o.name for o in outputs]
        if names_in != [self.metadata.input_name] or names_out != [self.metadata.output_name]:
            raise ModelFileError(
                f"{path}: I/O names {names_in} -> {names_out} differ from its metadata "
                f"({self.metadata.input_name} -> {self.metadata.output_name})"
            )
        built_size = declared.size_px or self.metadata.size_px
        if size_px is not None and require_valid_size(size_px) != built_size:
            raise UserError(
                f"--size {size_px}: {path.name} was exported for {built_size}x{built_size} input; "
                f"export again with dermseg-export --size {size_px}, or leave --size out"
            )
        self.metadata = self.metadata.with_updates(size_px=built_size)
        self.static_batch = declared.static_batch
        """The batch size the graph fixes (batches are cut and padded to it), or None for a dynamic batch."""
        self.device = device
        self.path = path
        self.threads = threads
        self.name = f"onnxruntime-{name}"
        if self.metadata.extra.get("precision") == "int8":  # dermseg-export --formats onnx-int8
            self.name, self.arithmetic = f"onnxruntime-int8-{name}", "int8"

    @staticmethod
    def _providers(name: str, path: Path, index: int) -> list[Any]:
        if name == "cuda":
            return [(CUDA_PROVIDER, {"device_id": index}), CPU_PROVIDER]
        if name == "tensorrt":
            cache = path.with_name(path.stem + ".ort-trt-cache")
            cache.mkdir(parents=True, exist_ok=True)
            trt_options = {
                "device_id": index, "trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache),
                "trt_timing_cache_enable": True, "trt_timing_cache_path": str(cache),
            }
            return [(TENSORRT_PROVIDER, trt_options), (CUDA_PROVIDER, {"device_id": index}), CPU_PROVIDER]
        return [CPU_PROVIDER]

    def infer(self, images: Any) -> Any:
        """(N,3,S,S) float32 -> (N,1,S,S) float32 logits; a fixed graph batch is honoured by cutting and padding."""
        return run_in_fixed_batches(images, self.static_batch, lambda part: self._checked(part, self._run(part)))

    def _run(self, images: Any) -> Any:
        batch = np.ascontiguousarray(images, dtype=np.float32)
        try:
            (logits,) = self.session.run([self.metadata.output_name], {self.metadata.input_name: batch})
        except self._errors as exc:
            raise self._batch_error(images, exc) from exc
        return logits

    def _batch_error(self, images: Any, exc: BaseException) -> InferenceError:
        return InferenceError(f"{self.path}: ONNX Runtime failed on a batch of shape {tuple(images.shape)} "
                              f"({type(exc).__name__}: {one_line(exc)})")

    def _checked(self, images: Any, logits: Any) -> Any:
        """`logits`, or ModelFileError when the model returned another shape or type than one map per image."""
        expected = (images.shape[0], 1, *images.shape[2:])
        if tuple(logits.shape) != expected or str(logits.dtype) not in ("float32", "torch.float32"):
            raise ModelFileError(f"{self.path}: for a batch of shape {tuple(images.shape)} the model returned "
                                 f"{logits.dtype} logits of shape {tuple(logits.shape)}, not float32 {expected}")
        return logits

    def close(self) -> None:
        self.session = None


class OnnxRuntimeCudaBackend(OnnxRuntimeBackend):
    """ONNX Runtime's CUDA or TensorRT provider: torch CUDA tensors in and out through I/O binding (no copy)."""

    on_device = True

    def infer(self, images: Any) -> Any:
        import torch

        return run_in_fixed_batches(images, self.static_batch, lambda part: self._checked(part, self._run(part)),
                                    torch.cat, lambda x, count: x.new_zeros((count, *x.shape[1:])))

    def _run(self, images: Any) -> Any:
        """Zero-copy I/O binding on torch CUDA tensors; ORT runs on its own stream, so sync around it."""
        import torch

        device = self.device.to_torch()
        images = images.to(device, torch.float32).contiguous()
        size = self.metadata.size_px
        logits = torch.empty((images.shape[0], 1, size, size), dtype=torch.float32, device=device)
        binding = self.session.io_binding()
        index = self.device.index or 0
        binding.bind_input(name=self.metadata.input_name, device_type="cuda", device_id=index, element_type=np.float32,
                           shape=tuple(images.shape), buffer_ptr=images.data_ptr())
        binding.bind_output(name=self.metadata.output_name, device_type="cuda", device_id=index,
                            element_type=np.float32, shape=tuple(logits.shape), buffer_ptr=logits.data_ptr())
        torch.cuda.current_stream(device).synchronize()
        try:
            self.session.run_with_iobinding(binding)
        except self._errors as exc:
            raise self._batch_error(images, exc) from exc
        return logits
