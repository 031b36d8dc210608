"""Checkpoint -> FP32 ONNX with a dynamic batch, a square input, and the dermseg metadata embedded."""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import onnx
import torch

from ..defaults import DEFAULT_OPSET, EXPORTERS
from ..errors import CheckFailedError, UserError
from ..model.metadata import ONNX_METADATA_KEY, ModelMetadata
from ..util.atomic import atomic_write_bytes


def _export_to_bytes(model: torch.nn.Module, metadata: ModelMetadata, exporter: str, opset: int) -> bytes:
    example = torch.zeros(2, 3, metadata.size_px, metadata.size_px)
    inputs, outputs = [metadata.input_name], [metadata.output_name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if exporter == "dynamo":
            batch = torch.export.Dim("batch", min=1, max=4096)
            program = torch.onnx.export(
                model, (example,), input_names=inputs, output_names=outputs, dynamic_shapes=({0: batch},),
                dynamo=True, opset_version=opset, verbose=False,
            )
            if program is None:
                raise CheckFailedError("the dynamo ONNX exporter returned no program")
            return bytes(program.model_proto.SerializeToString())
        axes = {metadata.input_name: {0: "batch"}, metadata.output_name: {0: "batch"}}
        with tempfile.TemporaryDirectory(prefix="dermseg-export-") as folder:
            path = Path(folder) / "model.onnx"
            torch.onnx.export(
                model, (example,), str(path), input_names=inputs, output_names=outputs, dynamic_axes=axes,
                dynamo=False, opset_version=opset,
            )
            return path.read_bytes()


def set_onnx_metadata(proto: onnx.ModelProto, metadata: ModelMetadata) -> None:
    """Store the metadata as one JSON value under `dermseg.metadata` (replacing an older one)."""
    for index in reversed(range(len(proto.metadata_props))):
        if proto.metadata_props[index].key == ONNX_METADATA_KEY:
            del proto.metadata_props[index]
    entry = proto.metadata_props.add()
    entry.key = ONNX_METADATA_KEY
    entry.value = metadata.to_json()


def export_onnx(
    model: torch.nn.Module,
    metadata: ModelMetadata,
    path: str | Path,
    exporter: str = "dynamo",
    opset: int = DEFAULT_OPSET,
) -> onnx.ModelProto:
    """Export `model` (eval mode, CPU, FP32) at `metadata.size_px`; check it with onnx.checker; write atomically."""
    if exporter not in EXPORTERS:
        raise UserError(f"unknown exporter {exporter!r} (use {' or '.join(EXPORTERS)})")
    model = model.eval().cpu().float()
    proto = onnx.load_from_string(_export_to_bytes(model, metadata, exporter, opset))
    set_onnx_metadata(proto, metadata)
    proto.producer_name = "dermseg"
    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise CheckFailedError(f"onnx.checker rejected the exported graph: {exc}") from exc
    atomic_write_bytes(path, proto.SerializeToString())
    return proto
