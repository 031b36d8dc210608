"""`dermseg-export --formats onnx-int8`: an INT8 ONNX quantized by ONNX Runtime, which the runtime install runs on the
CPU's INT8 units; its accuracy check, passing on a real model and failing on a model made to fail it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from dermseg_deploy.backends.onnxruntime_backend import OnnxRuntimeBackend
from dermseg_deploy.cli import run as cli_run
from dermseg_deploy.cli.export import parse_formats
from dermseg_deploy.export.check_images import choose_int8_images
from dermseg_deploy.export.onnx_int8_step import onnx_int8_from_onnx
from dermseg_deploy.samples import SAMPLES_DIR

from .helpers import fragile_onnx, iou, read_png

pytestmark = pytest.mark.slow
IMAGES = SAMPLES_DIR / "images"


def test_the_int8_onnx_runs_as_the_fp32_one_and_says_it_is_int8(onnx_path: Path, tmp_path: Path) -> None:
    with OnnxRuntimeBackend(onnx_path) as backend:
        metadata = backend.metadata
    images = choose_int8_images(IMAGES, None, 4, 4)
    final, failed = tmp_path / "model.int8.onnx", tmp_path / "model.int8.failed.onnx"
    result = onnx_int8_from_onnx(onnx_path, metadata, final, failed, images.calibration, images.source, images.check,
                                 min_mean_iou=0.5)  # a random-weight model: too fragile for the default 0.99
    assert result.passed and final.is_file() and not failed.exists()
    assert "on 4 real images that did not calibrate it" in result.summary() and "ONNX Runtime" in result.summary()
    assert final.stat().st_size < onnx_path.stat().st_size / 3
    with OnnxRuntimeBackend(final) as backend:
        assert backend.name == "onnxruntime-int8-cpu" and backend.arithmetic == "int8"
        assert backend.metadata.extra["precision"] == "int8" and backend.metadata.size_px == 64
    for name, engine in (("fp32", onnx_path), ("int8", final)):
        run = CliRunner().invoke(cli_run.main, ["--engine", str(engine), str(IMAGES), "-o", str(tmp_path / name), "-q"])
        assert run.exit_code == 0, run.output
    ious = [iou(read_png(p), read_png(tmp_path / "int8" / p.name)) for p in (tmp_path / "fp32").glob("*.png")]
    assert len(ious) == 8 and np.mean(ious) >= 0.5, ious
    assert parse_formats("onnx-int8", no_engine=False) == {"onnx", "onnx-int8"}  # what the export command builds


def test_the_onnx_int8_check_fails_a_model_made_to_fail_it(onnx_path: Path, tmp_path: Path) -> None:
    fragile = fragile_onnx(onnx_path, tmp_path)
    with OnnxRuntimeBackend(fragile) as backend:
        metadata = backend.metadata
    images = choose_int8_images(IMAGES, None, 4, 4)
    final, failed = tmp_path / "fragile.int8.onnx", tmp_path / "fragile.int8.failed.onnx"
    result = onnx_int8_from_onnx(fragile, metadata, final, failed, images.calibration, images.source, images.check)
    assert not result.passed and "mean mask IoU >= 0.99: FAIL" in result.summary()
    assert failed.is_file() and not final.exists()
    assert not list(tmp_path.glob("dermseg-quantize-*"))  # the quantizer's scratch folder is gone
