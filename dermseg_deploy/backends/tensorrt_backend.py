"""The TensorRT backend for `.plan`/`.engine` files, with the sidecar and the plan's SHA-256 checked first.

Buffers are torch CUDA tensors (no copies, no pycuda); TensorRT runs on its own stream, which first
waits on the stream that preprocessed the batch. Import only after `availability.require_tensorrt`.
"""

from __future__ import annotations

from pathlib import Path

import tensorrt as trt
import torch

from ..errors import BackendUnavailableError, InferenceError, ModelFileError, UserError
from ..model.sizes import require_valid_size
from ..tensorrt.batch_profile import padding_for_profile, split_batch
from ..tensorrt.sidecar import REBUILD_HINT, PlanIncompatibleError, check_compatibility, check_plan_digest, read_sidecar
from ..util.devices import Device, as_device
from .base import Backend

TORCH_DTYPE_BY_TRT: dict[trt.DataType, torch.dtype] = {
    trt.DataType.FLOAT: torch.float32,
    trt.DataType.HALF: torch.float16,
    trt.DataType.BF16: torch.bfloat16,
    trt.DataType.INT32: torch.int32,
    trt.DataType.INT64: torch.int64,
    trt.DataType.INT8: torch.int8,
    trt.DataType.UINT8: torch.uint8,
    trt.DataType.BOOL: torch.bool,
}


def _torch_dtype(dtype: trt.DataType, name: str, source: Path) -> torch.dtype:
    if dtype not in TORCH_DTYPE_BY_TRT:
        raise ModelFileError(f"{source}: tensor {name!r} has TensorRT type {dtype}, which dermseg cannot bind")
    return TORCH_DTYPE_BY_TRT[dtype]


def read_plan(plan_path: Path) -> bytes:
    try:
        return plan_path.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"{plan_path}: cannot be read ({exc.strerror or exc})") from exc


def deserialize_plan(runtime: trt.Runtime, plan_bytes: bytes, plan_path: Path) -> trt.ICudaEngine:
    """The engine; None from TensorRT (another TensorRT build or GPU, a damaged file) is a PlanIncompatibleError."""
    engine = runtime.deserialize_cuda_engine(plan_bytes)
    if engine is None:
        raise PlanIncompatibleError(
            f"{plan_path}: TensorRT {trt.__version__} could not deserialise this plan (another TensorRT build, GPU or "
            f"a damaged file; its log above says which); {REBUILD_HINT}"
        )
    return engine


def execute_chunk(
    context: trt.IExecutionContext, input_name: str, output_name: str, shape: tuple[int, ...], input_address: int,
    output_address: int, stream_handle: int,
) -> None:
    """Bind one chunk by tensor name and enqueue it; every refusal by TensorRT is an InferenceError (exit 70):
    the shapes are within the plan's profile by construction, so a refusal is not the user's doing."""
    if not context.set_input_shape(input_name, shape):
        raise InferenceError(f"TensorRT refused input shape {shape} for {input_name!r} (its log above says why)")
    for name, address in ((input_name, input_address), (output_name, output_address)):
        if not context.set_tensor_address(name, address):
            raise InferenceError(f"TensorRT refused the address of tensor {name!r} (its log above says why)")
    if not context.execute_async_v3(stream_handle):
        raise InferenceError("TensorRT's execute_async_v3 failed (its log above says why)")


class TensorRTBackend(Backend):
    """Runs a TensorRT plan built by dermseg-export; batches above the profile's maximum are split, and
    those below its minimum padded. A device backend: torch CUDA tensors in and out."""

    on_device = True

    def __init__(
        self, plan_path: str | Path, device: Device | str, size_px: int | None = None, trust_host_code: bool = False
    ) -> None:
        plan_path = Path(plan_path)
        device = as_device(device)
        if not device.is_cuda or not torch.cuda.is_available():
            raise BackendUnavailableError(f"{plan_path}: a TensorRT plan runs on a CUDA GPU; none is available here")
        if not plan_path.is_file():
            raise ModelFileError(f"{plan_path}: TensorRT plan not found")
        sidecar = read_sidecar(plan_path)
        index = device.index if device.index is not None else torch.cuda.current_device()
        self.device = Device("cuda", index)
        self._torch_device = torch.device("cuda", index)
        capability = torch.cuda.get_device_capability(index)
        decision = check_compatibility(sidecar, plan_path, trt.__version__, capability, trust_host_code)
        if size_px is not None and require_valid_size(size_px) != sidecar.metadata.size_px:
            raise UserError(f"--size {size_px}: {plan_path.name} was built for {sidecar.metadata.size_px}x"
                            f"{sidecar.metadata.size_px} input; export again with dermseg-export --size {size_px}")
        plan_bytes = read_plan(plan_path)
        check_plan_digest(sidecar, plan_bytes, plan_path)
        self.metadata = sidecar.metadata
        self.name = "tensorrt"
        self.path = plan_path
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self._runtime.engine_host_code_allowed = decision.allow_host_code
        with torch.cuda.device(self._torch_device):
            self._engine = deserialize_plan(self._runtime, plan_bytes, plan_path)
            context = self._engine.create_execution_context()
            if context is None:
                raise BackendUnavailableError(f"{plan_path}: TensorRT could not create an execution context (GPU memory?)")
            self._context = context
            self._stream = torch.cuda.Stream(self._torch_device)
        self.input_dtype, self._output_dtype = self._check_io(plan_path)
        shapes = self._engine.get_tensor_profile_shape(self.metadata.input_name, 0)
        self.min_batch, self.max_batch = int(shapes[0][0]), int(shapes[2][0])

    def _check_io(self, plan_path: Path) -> tuple[torch.dtype, torch.dtype]:
        engine = self._engine
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if inputs != [self.metadata.input_name] or outputs != [self.metadata.output_name]:
            raise ModelFileError(f"{plan_path}: I/O {inputs} -> {outputs} differ from its sidecar "
                                 f"({self.metadata.input_name} -> {self.metadata.output_name}); {REBUILD_HINT}")
        return (
            _torch_dtype(engine.get_tensor_dtype(inputs[0]), inputs[0], plan_path),
            _torch_dtype(engine.get_tensor_dtype(outputs[0]), outputs[0], plan_path),
        )

    def infer(self, images: torch.Tensor) -> torch.Tensor:
        count = images.shape[0]
        images = images.to(self._torch_device, self.input_dtype).contiguous()
        padding = padding_for_profile(count, self.min_batch, self.max_batch)
        if padding:
            images = torch.cat([images, images.new_zeros((padding, *images.shape[1:]))])
        size = self.metadata.size_px
        logits = torch.empty((images.shape[0], 1, size, size), dtype=self._output_dtype, device=self._torch_device)
        producer = torch.cuda.current_stream(self._torch_device)
        self._stream.wait_stream(producer)
        for part in split_batch(images.shape[0], self.max_batch):
            chunk, out = images[part], logits[part]
            execute_chunk(self._context, self.metadata.input_name, self.metadata.output_name, tuple(chunk.shape),
                          chunk.data_ptr(), out.data_ptr(), self._stream.cuda_stream)
        images.record_stream(self._stream)
        logits.record_stream(self._stream)
        producer.wait_stream(self._stream)
        return logits[:count].float()

    def close(self) -> None:
        if getattr(self, "_stream", None) is not None:
            self._stream.synchronize()
        for name in ("_context", "_engine", "_runtime"):
            if hasattr(self, name):
                delattr(self, name)
