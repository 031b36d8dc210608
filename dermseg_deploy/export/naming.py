"""Exported files are named after the checkpoint, here and nowhere else.

    model.pt -> model.onnx, model.fp16.onnx, model.plan + model.plan.json, model.timing.cache,
                model.xml + model.bin (OpenVINO FP32), model.int8.xml + model.int8.bin (OpenVINO INT8),
                model.int8.onnx (ONNX Runtime INT8)
    an artefact whose check failed -> model.failed.onnx, model.fp16.failed.onnx, model.failed.plan (+ .json),
                model.failed.xml (+ .bin), model.int8.failed.xml (+ .bin), model.int8.failed.onnx
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..tensorrt.sidecar import sidecar_path


@dataclass(frozen=True)
class ExportPaths:
    """Every file `dermseg-export` may write for one checkpoint, in one folder."""

    folder: Path
    stem: str

    def _path(self, suffix: str) -> Path:
        return self.folder / f"{self.stem}{suffix}"

    @property
    def onnx(self) -> Path:
        return self._path(".onnx")

    @property
    def fp16_onnx(self) -> Path:
        return self._path(".fp16.onnx")

    @property
    def plan(self) -> Path:
        return self._path(".plan")

    @property
    def sidecar(self) -> Path:
        return sidecar_path(self.plan)

    @property
    def timing_cache(self) -> Path:
        return self._path(".timing.cache")

    @property
    def failed_onnx(self) -> Path:
        return self._path(".failed.onnx")

    @property
    def failed_fp16_onnx(self) -> Path:
        return self._path(".fp16.failed.onnx")

    @property
    def failed_plan(self) -> Path:
        return self._path(".failed.plan")

    @property
    def openvino(self) -> Path:
        """The OpenVINO IR's .xml; its weights are the .bin beside it (`ir_weights`)."""
        return self._path(".xml")

    @property
    def failed_openvino(self) -> Path:
        return self._path(".failed.xml")

    @property
    def int8(self) -> Path:
        return self._path(".int8.xml")

    @property
    def failed_int8(self) -> Path:
        return self._path(".int8.failed.xml")

    @property
    def onnx_int8(self) -> Path:
        return self._path(".int8.onnx")

    @property
    def failed_onnx_int8(self) -> Path:
        return self._path(".int8.failed.onnx")


IR_WEIGHTS_SUFFIX = ".bin"


def ir_weights(xml: Path) -> Path:
    """An OpenVINO IR's weights file: the .bin of the same name beside its .xml."""
    return xml.with_suffix(IR_WEIGHTS_SUFFIX)


def export_paths(checkpoint_path: str | Path, out_dir: str | Path | None = None) -> ExportPaths:
    """The names for `checkpoint_path`'s exports, beside it or in `out_dir`."""
    checkpoint_path = Path(checkpoint_path)
    return ExportPaths(Path(out_dir) if out_dir is not None else checkpoint_path.parent, checkpoint_path.stem)
