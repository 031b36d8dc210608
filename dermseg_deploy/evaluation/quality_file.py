"""Writing a calibration of the predicted Jaccard into a model file: a copy of an ONNX file with it in its metadata
(no `onnx` package needed: `model.onnx_metadata_edit`), or of a checkpoint (with torch). Exported files take it from
there (ONNX metadata, IR rt_info, plan sidecar)."""

from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from ..model.metadata import ONNX_METADATA_KEY, ModelMetadata
from ..model.onnx_metadata_edit import rewrite_onnx_metadata
from ..model.quality_model import QUALITY_KEY, QualityModel

CALIBRATED_SUFFIXES = (".onnx", ".pt", ".pth")


def write_calibrated_copy(source: Path, target: Path, metadata: ModelMetadata, calibration: QualityModel) -> Path:
    """`target`: `source` with `calibration` in its metadata (`metadata` is the file's own, as its backend read it).
    `target` may be `source` itself (rewritten atomically)."""
    suffix = source.suffix.lower()
    if suffix not in CALIBRATED_SUFFIXES or target.suffix.lower() != suffix:
        raise UserError(f"--fit-quality writes a copy of an .onnx or .pt model with the same suffix (got {source.name} "
                        f"-> {target.name}); export other formats from the calibrated file")
    updated = metadata.with_updates(extra={**metadata.extra, QUALITY_KEY: calibration.to_dict()})
    ModelMetadata.from_json(updated.to_json())  # what a reader will see: checked before it is written
    if suffix == ".onnx":
        rewrite_onnx_metadata(source, target, ONNX_METADATA_KEY, updated.to_json())
    else:
        from ..model.checkpoint import load_checkpoint, save_checkpoint

        checkpoint = load_checkpoint(source)
        checkpoint.metadata = checkpoint.metadata.with_updates(extra=updated.extra)
        save_checkpoint(checkpoint, target)
    return target
