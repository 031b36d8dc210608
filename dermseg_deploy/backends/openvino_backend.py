"""OpenVINO backend for `.xml` IR files on the CPU (a host backend: NumPy in and out; no torch).

`precision` auto runs BF16 where the CPU has native BF16 units (AMX or AVX-512 BF16: `util.cpu.native_bf16`) and FP32
elsewhere; fp32 and bf16 ask for one. An INT8 IR (`dermseg-export --formats int8`) runs its quantized layers in INT8
(VNNI or AMX-INT8) whatever the precision, which then sets the layers NNCF left in floating point.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BackendUnavailableError, InferenceError, ModelFileError, UserError, one_line
from ..model.metadata import OPENVINO_METADATA_PATH, ModelMetadata
from ..model.sizes import require_valid_size
from ..util import cpu
from ..util.devices import Device, as_device
from ..util.extras import OPENVINO_EXTRA, extra_hint, require_module
from .base import Backend
from .graph_io import FLOAT_TYPE, check_graph_io, run_in_fixed_batches

INFERENCE_PRECISION = {"fp32": "f32", "bf16": "bf16"}
"""dermseg's precision names -> OpenVINO's INFERENCE_PRECISION_HINT."""


def resolve_precision(precision: str) -> str:
    """`auto` -> bf16 where the CPU has native BF16 units, else fp32; bf16 on a CPU without them is unavailable (it
    would be emulated, slower than FP32)."""
    if precision == "auto":
        return "bf16" if cpu.native_bf16() else "fp32"
    if precision not in INFERENCE_PRECISION:
        raise UserError(f"--precision {precision}: an OpenVINO model runs fp32 or bf16 (or auto)")
    if precision == "bf16" and not cpu.native_bf16():
        raise BackendUnavailableError("--precision bf16: this CPU has no native BF16 units (AMX or AVX-512 BF16); use "
                                      "--precision fp32 (or auto)")
    return precision


def describe_precision_choice(precision: str) -> str:
    """The line that announces what `auto` picked, and why."""
    if precision == "bf16":
        return f"precision: auto picked bf16 (the CPU has native BF16 units: {cpu.bf16_units()})"
    return "precision: auto picked fp32 (the CPU has no native BF16 units: AMX or AVX-512 BF16)"


class _Port:
    """An OpenVINO input or output as `graph_io.check_graph_io` reads it (name, shape, ONNX type name)."""

    def __init__(self, port: Any) -> None:
        self.name = port.get_any_name()
        self.shape = [dim.get_length() if dim.is_static else "?" for dim in port.get_partial_shape()]
        self.type = FLOAT_TYPE if port.get_element_type().get_type_name() == "f32" else str(port.get_element_type())


def read_ir_metadata(model: Any, path: Path) -> ModelMetadata:
    """The dermseg input spec from an IR's rt_info."""
    key = list(OPENVINO_METADATA_PATH)
    if not model.has_rt_info(key):
        raise ModelFileError(f"{path}: no {'/'.join(key)} in its rt_info; export it with dermseg-export --formats "
                             "openvino")
    try:
        return ModelMetadata.from_json(str(model.get_rt_info(key).astype(str)))
    except ModelFileError as exc:
        raise ModelFileError(f"{path}: {exc}") from exc


class OpenVinoBackend(Backend):
    """OpenVINO Runtime on the CPU: one compiled model and one infer request; a fixed square input size."""

    def __init__(self, path: str | Path, device: Device | str | Any = None, size_px: int | None = None,
                 precision: str = "auto", threads: int | None = None) -> None:
        path = Path(path)
        ov = require_module("openvino", f"{path} (an OpenVINO model)", extra_hint(OPENVINO_EXTRA))
        device = as_device(device)
        if device.is_cuda:
            raise UserError(f"{path}: dermseg runs OpenVINO models on the CPU; use --device cpu (or auto)")
        weights = path.with_suffix(".bin")
        if not path.is_file():
            raise ModelFileError(f"{path}: OpenVINO model not found")
        if not weights.is_file():
            raise ModelFileError(f"{path}: its weights file {weights.name} is missing (an IR is the .xml and the .bin "
                                 "beside it)")
        self.auto_precision = precision == "auto"
        self.precision = resolve_precision(precision)
        core = ov.Core()
        try:
            model = core.read_model(str(path), str(weights))
        except RuntimeError as exc:
            raise ModelFileError(f"{path}: OpenVINO cannot read it ({one_line(exc)})") from exc
        self.metadata = read_ir_metadata(model, path)
        inputs, outputs = [_Port(p) for p in model.inputs], [_Port(p) for p in model.outputs]
        declared = check_graph_io(inputs, outputs, path)
        if [p.name for p in inputs] != [self.metadata.input_name] or [p.name for p in outputs] != [self.metadata.output_name]:
            raise ModelFileError(f"{path}: I/O names {[p.name for p in inputs]} -> {[p.name for p in outputs]} differ "
                                 f"from its metadata ({self.metadata.input_name} -> {self.metadata.output_name})")
        built_size = declared.size_px or self.metadata.size_px
        if size_px is not None and require_valid_size(size_px) != built_size:
            raise UserError(f"--size {size_px}: {path.name} was exported for {built_size}x{built_size} input; export "
                            f"again with dermseg-export --size {size_px}, or leave --size out")
        self.metadata = self.metadata.with_updates(size_px=built_size)
        self.static_batch = declared.static_batch
        config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": INFERENCE_PRECISION[self.precision],
                                  "PERFORMANCE_HINT": "LATENCY"}
        if threads is not None:
            config["INFERENCE_NUM_THREADS"] = threads
        try:
            self.compiled = core.compile_model(model, "CPU", config)
        except RuntimeError as exc:
            raise ModelFileError(f"{path}: OpenVINO cannot compile it for the CPU ({one_line(exc)})") from exc
        self.request = self.compiled.create_infer_request()
        self.quantized = self.metadata.extra.get("precision") == "int8"
        self.device = device
        self.path = path
        self.threads = threads
        self.name = f"openvino-{'int8-' if self.quantized else ''}{self.precision}"
        self.arithmetic = "int8" if self.quantized else self.precision
        self.notice = describe_precision_choice(self.precision) if self.auto_precision else None

    def infer(self, images: Any) -> Any:
        """(N,3,S,S) float32 -> (N,1,S,S) float32 logits (a copy: the request reuses its output buffer)."""
        return run_in_fixed_batches(images, self.static_batch, self._run)

    def _run(self, images: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(images, dtype=np.float32)
        try:
            self.request.infer({0: batch})
        except RuntimeError as exc:
            raise InferenceError(f"{self.path}: OpenVINO failed on a batch of shape {batch.shape} "
                                 f"({one_line(exc)})") from exc
        logits = np.array(self.request.get_output_tensor(0).data, dtype=np.float32, copy=True)
        expected = (batch.shape[0], 1, *batch.shape[2:])
        if logits.shape != expected:
            raise ModelFileError(f"{self.path}: for a batch of shape {batch.shape} the model returned logits of shape "
                                 f"{logits.shape}, not {expected}")
        return logits

    def close(self) -> None:
        self.request = None
        self.compiled = None
