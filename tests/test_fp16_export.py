"""FP16 ONNX by AutoCast, the FP16 arithmetic check, and the choice of calibration and check images."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from click.testing import CliRunner
from onnx import TensorProto, helper

from dermseg_deploy.backends.onnxruntime_backend import OnnxRuntimeBackend
from dermseg_deploy.cli import export as cli_export
from dermseg_deploy.errors import UserError
from dermseg_deploy.export import fp16_step
from dermseg_deploy.export.check_images import choose_export_images, load_batch
from dermseg_deploy.export.fp16_check import EMULATED, HALF, check_fp16_arithmetic
from dermseg_deploy.export.fp16_emulation import EmulatedFp16
from dermseg_deploy.export.fp16_onnx import convert_to_fp16_onnx, fp32_compute_nodes
from dermseg_deploy.export.parity import mask_iou
from dermseg_deploy.model.metadata import ModelMetadata
from dermseg_deploy.samples import sample_image_paths

from .conftest import ISIC2017_FULLRES, TEST_SIZE_PX, require_shared


class OverflowsInHalf(torch.nn.Module):
    """Finite in FP32, infinite in FP16: squares values around 1e3."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * 1e3).pow(2).mean(1, keepdim=True) - 1.0


def test_export_images_are_disjoint_and_real_by_default() -> None:
    images = choose_export_images(None, None, calib_count=4, check_count=10, synthetic=False)
    assert len(images.calibration) == 4 and len(images.check) == 4
    assert not set(images.calibration) & set(images.check)
    assert "4 real images from the shipped samples" == images.calibration_source
    with pytest.raises(UserError, match="no check images left"):
        choose_export_images(None, None, calib_count=8, check_count=2, synthetic=False)
    synthetic = choose_export_images(None, None, calib_count=3, check_count=2, synthetic=True)
    assert synthetic.calibration == () and "SYNTHETIC" in synthetic.calibration_source


def test_autocast_fp16_onnx_keeps_fp32_io_and_metadata_and_matches_fp32(onnx_path: Path, tmp_path: Path) -> None:
    metadata = ModelMetadata(size_px=TEST_SIZE_PX)
    images = choose_export_images(None, None, 4, 4, synthetic=False)
    calibration = load_batch(images.calibration, metadata)
    fp16_path = tmp_path / "model.fp16.onnx"
    conversion = convert_to_fp16_onnx(onnx_path, fp16_path, metadata, calibration.numpy(), images.calibration_source)
    proto = onnx.load(str(fp16_path))
    assert proto.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert proto.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT
    conv_weights = [i for i in proto.graph.initializer if i.data_type == TensorProto.FLOAT16]
    assert len(conv_weights) > 50, "the weights should be FP16"
    assert conversion.node_count > 100 and "compute nodes kept in FP32" in conversion.summary()
    check = load_batch(images.check, metadata)
    with OnnxRuntimeBackend(fp16_path) as fp16, OnnxRuntimeBackend(onnx_path) as fp32:
        assert fp16.metadata.extra["precision"] == "fp16"
        assert fp16.metadata.extra["fp32_nodes"] == list(conversion.fp32_nodes)
        assert fp16.metadata.extra["calibration"] == images.calibration_source
        a, b = fp32.infer(check.numpy()), fp16.infer(check.numpy())
    ious = [mask_iou(torch.from_numpy(x > 0), torch.from_numpy(y > 0)) for x, y in zip(a, b)]
    assert min(ious) > 0.98


def test_fp32_compute_nodes_lists_nodes_with_float32_outputs() -> None:
    graph = helper.make_graph(
        [
            helper.make_node("Cast", ["x"], ["x16"], to=TensorProto.FLOAT16, name="cast_in"),
            helper.make_node("Relu", ["x16"], ["r16"], name="relu_fp16"),
            helper.make_node("Cast", ["r16"], ["r32"], to=TensorProto.FLOAT, name="cast_out"),
            helper.make_node("Exp", ["r32"], ["y"], name="exp_fp32"),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    kept, total = fp32_compute_nodes(helper.make_model(graph))
    assert kept == ["exp_fp32"] and total == 2


def test_fp16_arithmetic_check_passes_a_real_model_and_catches_overflow(calibrated_model: torch.nn.Module) -> None:
    metadata = ModelMetadata(size_px=TEST_SIZE_PX)
    batch = load_batch(sample_image_paths()[4:8], metadata)
    report = check_fp16_arithmetic(calibrated_model, batch, 0.0, torch.device("cpu"))
    assert report.passed and report.nonfinite_images == 0 and report.mean_iou >= 0.99, report.summary()
    assert len(report.ious) == 4 and ": PASS" in report.summary()
    assert all(p.dtype == torch.float32 for p in calibrated_model.parameters()), "the check must not touch the model"
    overflow = check_fp16_arithmetic(OverflowsInHalf(), batch, 0.0, torch.device("cpu"))
    assert not overflow.passed and overflow.nonfinite_images == 4 and ": FAIL" in overflow.summary()


@pytest.mark.slow
def test_export_cli_exits_3_when_fp16_arithmetic_fails_and_says_synthetic(
    checkpoint_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = fp16_step.check_fp16_arithmetic

    def on_overflowing_model(model: torch.nn.Module, *args: object, **kwargs: object) -> object:
        return real(OverflowsInHalf(), *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(fp16_step, "check_fp16_arithmetic", on_overflowing_model)
    model = tmp_path / "model.pt"
    shutil.copy(checkpoint_path, model)
    result = CliRunner().invoke(cli_export.main, [str(model), "--size", "64", "--synthetic-calib", "--calib-count", "2"])
    assert result.exit_code == 3, result.output
    assert "calibrated on 2 SYNTHETIC random inputs" in result.output
    assert "images with inf/NaN: 2: FAIL" in result.output
    assert "model.fp16.failed.onnx is kept for inspection only" in result.stderr
    assert "nothing after it was built" in result.stderr
    assert (tmp_path / "model.onnx").is_file() and (tmp_path / "model.fp16.failed.onnx").is_file()
    assert not (tmp_path / "model.fp16.onnx").exists() and not (tmp_path / "model.plan").exists()


@pytest.mark.slow
def test_fp16_arithmetic_on_full_resolution_images(calibrated_model: torch.nn.Module) -> None:
    folder = require_shared(ISIC2017_FULLRES)
    paths = sorted((folder / "ISIC-2017_Validation_Data").glob("*.jpg"))[:3]
    assert len(paths) == 3
    batch = load_batch(paths, ModelMetadata(size_px=128))
    report = check_fp16_arithmetic(calibrated_model, batch, 0.0, torch.device("cpu"))
    assert report.passed, report.summary()
    assert np.isfinite(report.max_abs_logit_diff)


@pytest.mark.slow
def test_emulated_fp16_agrees_with_true_half_precision_on_real_images(calibrated_model: torch.nn.Module) -> None:
    folder = require_shared(ISIC2017_FULLRES)
    paths = sorted((folder / "ISIC-2017_Validation_Data").glob("*.jpg"))[:2]
    batch = load_batch(paths, ModelMetadata(size_px=TEST_SIZE_PX))
    with torch.inference_mode():
        half = copy.deepcopy(calibrated_model).half()(batch.half()).float()
        emulated = EmulatedFp16(calibrated_model)(batch)
    assert torch.isfinite(emulated).all() and torch.isfinite(half).all()
    assert mask_iou(emulated > 0, half > 0) >= 0.99
    scale = float(half.abs().max())
    assert float((emulated - half).abs().max()) <= 0.05 * scale
    report = check_fp16_arithmetic(calibrated_model, batch, 0.0, torch.device("cpu"))
    assert report.mode == EMULATED and "emulated" in report.summary()
    overflow = check_fp16_arithmetic(OverflowsInHalf(), batch, 0.0, torch.device("cpu"), emulate=False)
    assert overflow.mode == HALF and overflow.nonfinite_images == 2
