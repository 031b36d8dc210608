from __future__ import annotations

import shutil
from pathlib import Path

import onnx
import pytest
import torch
from click.testing import CliRunner

from dermseg_deploy import cli_export
from dermseg_deploy.backends.onnxruntime_backend import OnnxRuntimeBackend
from dermseg_deploy.export.parity import compare_logits, mask_iou
from dermseg_deploy.tensorrt.availability import tensorrt_installed


def test_exported_onnx_has_a_dynamic_batch_and_matches_pytorch(onnx_path: Path, calibrated_model: torch.nn.Module) -> None:
    onnx.checker.check_model(str(onnx_path), full_check=True)
    with OnnxRuntimeBackend(onnx_path, torch.device("cpu")) as backend:
        for batch_size in (1, 3):
            x = torch.randn(batch_size, 3, 64, 64)
            with torch.no_grad():
                expected = calibrated_model(x)
            assert torch.allclose(backend.infer(x), expected, atol=1e-3)


@pytest.mark.skipif(tensorrt_installed(), reason="TensorRT is installed here: the plan is built (tests marked tensorrt)")
def test_export_cli_without_tensorrt_writes_both_onnx_files_then_exits_4(checkpoint_path: Path, tmp_path: Path) -> None:
    model = tmp_path / "model.pt"
    shutil.copy(checkpoint_path, model)
    result = CliRunner().invoke(cli_export.main, [str(model), "--size", "64"])
    assert result.exit_code == 4, result.output
    assert (tmp_path / "model.onnx").is_file() and (tmp_path / "model.fp16.onnx").is_file()
    assert not (tmp_path / "model.plan").exists()
    assert "parity onnxruntime-cpu vs pytorch-cpu" in result.output and ": PASS" in result.output
    assert "weight rounding only" in result.output and "FP16 arithmetic (PyTorch half vs FP32" in result.output
    assert "calibrated on 2 real images from the shipped samples" in result.output
    assert "needs TensorRT, which is not installed: pip install 'dermseg[tensorrt]'" in result.stderr
    assert "--no-engine" in result.stderr


def test_export_cli_with_no_engine_exits_0_and_honours_output_dir(checkpoint_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(cli_export.main, [str(checkpoint_path), "--size", "64", "-o", str(out), "--no-engine"])
    assert result.exit_code == 0, result.output
    assert (out / f"{checkpoint_path.stem}.onnx").is_file() and (out / f"{checkpoint_path.stem}.fp16.onnx").is_file()
    assert "not built: model.plan (--no-engine)" in result.output


def test_parity_failure_exits_3(checkpoint_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = cli_export.pytorch_logits

    def drifted(model: torch.nn.Module, batch: torch.Tensor) -> torch.Tensor:
        return real(model, batch) + 0.01

    monkeypatch.setattr(cli_export, "pytorch_logits", drifted)
    result = CliRunner().invoke(cli_export.main, [str(checkpoint_path), "--size", "64", "-o", str(tmp_path), "--no-engine"])
    assert result.exit_code == 3, result.output
    assert ": FAIL" in result.output and "FP32 parity check failed" in result.stderr


@pytest.mark.parametrize("args,code,message", [
    (["--size", "100"], 2, "multiple of 32"),
    (["--parity-images", "/nonexistent"], 2, "not found"),
])
def test_export_usage_errors_exit_2(checkpoint_path: Path, args: list[str], code: int, message: str) -> None:
    result = CliRunner().invoke(cli_export.main, [str(checkpoint_path), *args])
    assert result.exit_code == code and message in result.stderr


def test_missing_or_corrupt_checkpoint_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    for path in (tmp_path / "absent.pt", bad):
        result = CliRunner().invoke(cli_export.main, [str(path)])
        assert result.exit_code == 2 and str(path) in result.stderr


def test_compare_logits_counts_two_empty_masks_as_equal() -> None:
    empty = torch.full((2, 1, 8, 8), -3.0)
    report = compare_logits(empty, empty.clone(), 0.0, atol=1e-3, min_iou=0.999)
    assert report.passed and report.ious == (1.0, 1.0) and report.max_abs_logit_diff == 0.0
    assert mask_iou(torch.zeros(4, 4), torch.zeros(4, 4)) == 1.0


def test_compare_logits_fails_on_mask_disagreement_and_non_finite_values() -> None:
    reference = torch.full((1, 1, 4, 4), 1.0)
    candidate = reference.clone()
    candidate[..., :2, :] = -1.0
    report = compare_logits(reference, candidate, 0.0, atol=10.0, min_iou=0.999)
    assert not report.passed and report.worst_iou == 0.5
    candidate[..., 0, 0] = float("nan")
    assert compare_logits(reference, candidate, 0.0, atol=10.0, min_iou=0.0).max_abs_logit_diff == float("inf")
