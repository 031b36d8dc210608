"""Exported files are named after the checkpoint, here and nowhere else.

    model.pt -> model.onnx, model.fp16.onnx, model.plan + model.plan.json, model.timing.cache
    an artefact whose check failed -> model.failed.onnx, model.fp16.failed.onnx, model.failed.plan (+ .json)
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


def export_paths(checkpoint_path: str | Path, out_dir: str | Path | None = None) -> ExportPaths:
    """The names for `checkpoint_path`'s exports, beside it or in `out_dir`."""
    checkpoint_path = Path(checkpoint_path)
    return ExportPaths(Path(out_dir) if out_dir is not None else checkpoint_path.parent, checkpoint_path.stem)
