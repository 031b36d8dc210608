"""FP32 ONNX -> mixed-precision FP16 ONNX with NVIDIA ModelOpt AutoCast, calibrated on real images.

The FP16 graph keeps FP32 inputs and outputs (`keep_io_types`), so every backend feeds it the same
preprocessed batch; the nodes AutoCast kept in FP32 are recorded in its metadata.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from ..errors import BackendUnavailableError, CheckFailedError
from ..model.metadata import ModelMetadata
from ..util.atomic import atomic_write_bytes
from ..util.extras import EXPORT_EXTRA, extra_hint
from .onnx_export import set_onnx_metadata

FLOAT32 = onnx.TensorProto.FLOAT
MODELOPT_HINT = f"{extra_hint(EXPORT_EXTRA)} (nvidia-modelopt and what AutoCast imports, without its onnx extra)"


@dataclass(frozen=True)
class Fp16Conversion:
    """What AutoCast did: the nodes still computing in FP32, out of how many, and what calibrated it."""

    path: Path
    fp32_nodes: tuple[str, ...]
    node_count: int
    calibration: str

    def summary(self) -> str:
        kept = ", ".join(self.fp32_nodes[:8]) + (" ..." if len(self.fp32_nodes) > 8 else "")
        return (
            f"wrote {self.path} (FP16 by ModelOpt AutoCast, FP32 I/O; calibrated on {self.calibration}); "
            f"{len(self.fp32_nodes)} of {self.node_count} compute nodes kept in FP32" + (f": {kept}" if kept else "")
        )


def _import_autocast() -> Any:
    try:
        from modelopt.onnx.autocast import convert_to_mixed_precision
    except ImportError as exc:
        raise BackendUnavailableError(f"FP16 export needs NVIDIA ModelOpt, which is not installed: {MODELOPT_HINT}") from exc
    for name in ("modelopt.onnx", "modelopt.onnx.autocast"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return convert_to_mixed_precision


def fp32_compute_nodes(proto: onnx.ModelProto) -> tuple[list[str], int]:
    """Names of the non-Cast nodes with an FP32 output, and the number of non-Cast nodes."""
    inferred = onnx.shape_inference.infer_shapes(proto)
    graph = inferred.graph
    elem_type = {v.name: v.type.tensor_type.elem_type for v in [*graph.value_info, *graph.input, *graph.output]}
    compute = [node for node in graph.node if node.op_type != "Cast"]
    kept = [node.name or node.op_type for node in compute if any(elem_type.get(out) == FLOAT32 for out in node.output)]
    return kept, len(compute)


def convert_to_fp16_onnx(
    fp32_path: Path, fp16_path: Path, metadata: ModelMetadata, calibration: np.ndarray, calibration_source: str
) -> Fp16Conversion:
    """Convert with AutoCast (`low_precision_type="fp16"`, `keep_io_types=True`), write atomically.

    `calibration` is an (N,3,S,S) float32 batch of preprocessed images: AutoCast runs it through ONNX
    Runtime and keeps in FP32 the nodes whose values would not fit FP16.
    """
    convert = _import_autocast()
    try:
        proto = convert(
            onnx_path=str(fp32_path), low_precision_type="fp16", keep_io_types=True,
            calibration_data={metadata.input_name: np.ascontiguousarray(calibration, dtype=np.float32)},
        )
    except (ValueError, RuntimeError) as exc:
        raise CheckFailedError(f"{fp32_path}: ModelOpt AutoCast failed ({exc})") from exc
    kept, total = fp32_compute_nodes(proto)
    set_onnx_metadata(proto, metadata.with_updates(
        extra={**metadata.extra, "precision": "fp16", "fp32_nodes": kept, "calibration": calibration_source}
    ))
    proto.producer_name = "dermseg"
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as exc:
        raise CheckFailedError(f"onnx.checker rejected the FP16 graph: {exc}") from exc
    atomic_write_bytes(fp16_path, proto.SerializeToString())
    return Fp16Conversion(fp16_path, tuple(kept), total, calibration_source)
