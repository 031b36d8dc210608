"""`dermseg-run` on real full-resolution ISIC 2017 images (needs ../shared/data; CI has it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from dermseg_deploy.cli import run as cli_run
from dermseg_deploy.export.onnx_export import export_onnx
from dermseg_deploy.model.metadata import ModelMetadata

from .conftest import ISIC2017_FULLRES, require_shared
from .helpers import displayed_size, iou, read_png

SIZE_PX = 128


@pytest.mark.slow
@pytest.mark.shared_data
def test_full_resolution_masks_have_each_images_size_and_match_between_backends(
    tmp_path: Path, checkpoint_path: Path, calibrated_model: torch.nn.Module
) -> None:
    images = require_shared(ISIC2017_FULLRES) / "ISIC-2017_Validation_Data"
    onnx_path = tmp_path / "model128.onnx"
    export_onnx(calibrated_model, ModelMetadata(size_px=SIZE_PX), onnx_path)
    for name, model, extra in (("onnx", onnx_path, []), ("pt", checkpoint_path, ["--size", str(SIZE_PX)])):
        args = ["--engine", str(model), str(images), "-o", str(tmp_path / name), "-q", "--batch-size", "4", *extra]
        result = CliRunner().invoke(cli_run.main, args)
        assert result.exit_code == 0, result.output
    sources = sorted(images.glob("*.jpg"))
    assert len(sources) == 24
    for source in sources:
        onnx_mask = read_png(tmp_path / "onnx" / f"{source.stem}_segmentation.png")
        pt_mask = read_png(tmp_path / "pt" / f"{source.stem}_segmentation.png")
        assert onnx_mask.shape == displayed_size(source)
        assert set(np.unique(onnx_mask).tolist()) <= {0, 255}
        assert iou(onnx_mask, pt_mask) >= 0.999, source.name
