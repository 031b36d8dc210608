"""A Triton Inference Server model repository for what `dermseg-export` wrote and checked.

    REPO/<stem>_tensorrt/config.pbtxt + 1/model.plan   platform tensorrt_plan, from the plan's sidecar
    REPO/<stem>_onnx/config.pbtxt     + 1/model.onnx   platform onnxruntime_onnx, from the ONNX graph

Each config names the tensors, their data types and their dims without the batch dimension, sets
`max_batch_size` to the plan's profile maximum (the export's `--max-batch` for ONNX), turns on dynamic
batching and asks for a GPU instance; the input spec (size, mean, std, threshold) travels as the
`dermseg.metadata` parameter. Pre- and postprocessing stay in the client (docs/guides/scale-out.md). A plan only loads
in a Triton built with the TensorRT version the sidecar records.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import onnx

from ..errors import ModelFileError
from ..model.metadata import ONNX_METADATA_KEY, ModelMetadata
from ..tensorrt.sidecar import PlanSidecar, TensorSpec, read_sidecar
from ..util.atomic import atomic_open, atomic_write_bytes

TRITON_TYPE_BY_TENSORRT = {"float": "TYPE_FP32", "half": "TYPE_FP16", "bf16": "TYPE_BF16", "int32": "TYPE_INT32",
                           "int64": "TYPE_INT64", "int8": "TYPE_INT8", "uint8": "TYPE_UINT8", "bool": "TYPE_BOOL"}
TRITON_TYPE_BY_ONNX: dict[int, str] = {onnx.TensorProto.FLOAT: "TYPE_FP32", onnx.TensorProto.FLOAT16: "TYPE_FP16",
                       onnx.TensorProto.BFLOAT16: "TYPE_BF16", onnx.TensorProto.INT32: "TYPE_INT32",
                       onnx.TensorProto.INT64: "TYPE_INT64", onnx.TensorProto.INT8: "TYPE_INT8",
                       onnx.TensorProto.UINT8: "TYPE_UINT8", onnx.TensorProto.BOOL: "TYPE_BOOL"}
METADATA_PARAMETER = ONNX_METADATA_KEY
MAX_QUEUE_DELAY_US = 1000


@dataclass(frozen=True)
class TritonTensor:
    name: str
    data_type: str
    dims: tuple[int, ...]
    """Without the batch dimension."""


@dataclass(frozen=True)
class TritonModel:
    """One model of the repository: its config and the artefact that goes in its version folder."""

    name: str
    platform: str
    max_batch_size: int
    inputs: tuple[TritonTensor, ...]
    outputs: tuple[TritonTensor, ...]
    preferred_batch_size: int
    metadata: ModelMetadata
    artefact: Path
    filename: str

    def config_text(self) -> str:
        """`config.pbtxt` in protobuf text format (Triton's ModelConfig)."""
        lines = [f'name: "{self.name}"', f'platform: "{self.platform}"', f"max_batch_size: {self.max_batch_size}"]
        for section, tensors in (("input", self.inputs), ("output", self.outputs)):
            entries = [f'  {{\n    name: "{t.name}"\n    data_type: {t.data_type}\n'
                       f'    dims: [ {", ".join(map(str, t.dims))} ]\n  }}' for t in tensors]
            lines.append(f"{section} [\n" + ",\n".join(entries) + "\n]")
        lines.append(f"dynamic_batching {{\n  preferred_batch_size: [ {self.preferred_batch_size} ]\n"
                     f"  max_queue_delay_microseconds: {MAX_QUEUE_DELAY_US}\n}}")
        lines.append("instance_group [\n  {\n    kind: KIND_GPU\n    count: 1\n  }\n]")
        value = _quote(self.metadata.to_json())
        lines.append(f'parameters {{\n  key: "{METADATA_PARAMETER}"\n  value {{ string_value: {value} }}\n}}')
        return "\n".join(lines) + "\n"


def _quote(text: str) -> str:
    """A protobuf text-format string literal (C escapes; bytes beyond ASCII as octal escapes)."""
    out = []
    for byte in text.encode("utf-8"):
        char = chr(byte)
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif 32 <= byte < 127:
            out.append(char)
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def model_from_plan(plan_path: Path, name: str, sidecar: PlanSidecar | None = None) -> TritonModel:
    """The `tensorrt_plan` model of a plan, from its sidecar (tensor names, dtypes, shapes, batch profile)."""
    sidecar = sidecar or read_sidecar(plan_path)

    def tensor(spec: TensorSpec) -> TritonTensor:
        if spec.dtype not in TRITON_TYPE_BY_TENSORRT:
            raise ModelFileError(f"{plan_path}: tensor {spec.name!r} has type {spec.dtype}, no Triton equivalent here")
        return TritonTensor(spec.name, TRITON_TYPE_BY_TENSORRT[spec.dtype], _without_batch(spec.shape, spec.name, plan_path))

    return TritonModel(name, "tensorrt_plan", sidecar.batch_profile["max"], tuple(tensor(t) for t in sidecar.inputs),
                       tuple(tensor(t) for t in sidecar.outputs), sidecar.batch_profile["opt"], sidecar.metadata,
                       plan_path, "model.plan")


def model_from_onnx(onnx_path: Path, name: str, max_batch_size: int, preferred_batch_size: int) -> TritonModel:
    """The `onnxruntime_onnx` model of an ONNX file, from its graph (names, types, shapes) and dermseg metadata."""
    proto = onnx.load(str(onnx_path), load_external_data=False)
    entries = {entry.key: entry.value for entry in proto.metadata_props}
    if ONNX_METADATA_KEY not in entries:
        raise ModelFileError(f"{onnx_path}: no {ONNX_METADATA_KEY!r} metadata; export it with dermseg-export")
    metadata = ModelMetadata.from_json(entries[ONNX_METADATA_KEY])
    initializers = {init.name for init in proto.graph.initializer}

    def tensor(value: onnx.ValueInfoProto) -> TritonTensor:
        kind = value.type.tensor_type
        if kind.elem_type not in TRITON_TYPE_BY_ONNX:
            raise ModelFileError(f"{onnx_path}: tensor {value.name!r} has ONNX type {kind.elem_type}, no Triton equivalent")
        dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in kind.shape.dim)
        if kind.shape.dim and kind.shape.dim[0].HasField("dim_value"):
            raise ModelFileError(f"{onnx_path}: tensor {value.name!r} has a fixed batch dimension; export it again")
        return TritonTensor(value.name, TRITON_TYPE_BY_ONNX[kind.elem_type], _without_batch(dims, value.name, onnx_path))

    inputs = tuple(tensor(v) for v in proto.graph.input if v.name not in initializers)
    return TritonModel(name, "onnxruntime_onnx", max_batch_size, inputs, tuple(tensor(v) for v in proto.graph.output),
                       preferred_batch_size, metadata, onnx_path, "model.onnx")


def _without_batch(shape: tuple[int, ...], name: str, source: Path) -> tuple[int, ...]:
    if len(shape) < 2 or shape[0] != -1:
        raise ModelFileError(f"{source}: tensor {name!r} has shape {shape}; a dynamic batch dimension first was expected")
    return tuple(shape[1:])


def write_triton_repo(repo: Path, models: list[TritonModel]) -> list[Path]:
    """Write each model's folder (config.pbtxt and version 1), replacing what an earlier export put there."""
    written = []
    for model in models:
        folder = repo / model.name
        if folder.exists():
            shutil.rmtree(folder)
        with atomic_open(folder / "1" / model.filename) as handle, model.artefact.open("rb") as source:
            shutil.copyfileobj(source, handle)
        atomic_write_bytes(folder / "config.pbtxt", model.config_text().encode("utf-8"))
        written.append(folder)
    return written


def export_triton_models(stem: str, onnx_path: Path | None, plan_path: Path | None, max_batch_size: int,
                         preferred_batch_size: int) -> list[TritonModel]:
    """The models for the artefacts an export wrote and checked: `<stem>_onnx` and, with a plan, `<stem>_tensorrt`."""
    models = []
    if onnx_path is not None:
        models.append(model_from_onnx(onnx_path, f"{stem}_onnx", max_batch_size, preferred_batch_size))
    if plan_path is not None:
        models.append(model_from_plan(plan_path, f"{stem}_tensorrt"))
    return models
