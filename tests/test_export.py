"""Export from Python and from the CLI; failed checks keep their artefact under a name no backend loads."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from click.testing import CliRunner

from dermseg_deploy.backends.onnxruntime_backend import OnnxRuntimeBackend
from dermseg_deploy.cli import export as cli_export
from dermseg_deploy.export import ExportSettings, export_checkpoint, export_paths
from dermseg_deploy.export.parity import ParityReport, compare_logits, mask_iou
from dermseg_deploy.samples import SAMPLES_DIR
from dermseg_deploy.tensorrt.availability import tensorrt_installed


def test_exported_onnx_has_a_dynamic_batch_and_matches_pytorch(onnx_path: Path, calibrated_model: torch.nn.Module) -> None:
    onnx.checker.check_model(str(onnx_path), full_check=True)
    with OnnxRuntimeBackend(onnx_path) as backend:
        for batch_size in (1, 3):
            x = torch.randn(batch_size, 3, 64, 64)
            with torch.no_grad():
                expected = calibrated_model(x)
            logits = backend.infer(x.numpy())
            assert isinstance(logits, np.ndarray) and np.allclose(logits, expected.numpy(), atol=1e-3)


def test_export_from_python_returns_checked_artefacts(checkpoint_path: Path, tmp_path: Path) -> None:
    seen: list[str] = []
    settings = ExportSettings(size_px=64, build_plan=False, check_device="cpu")
    result = export_checkpoint(checkpoint_path, settings, tmp_path, lambda step: seen.append(type(step).__name__))
    assert result.passed and result.failed_step is None and seen == ["OnnxExport", "Fp16OnnxExport"]
    onnx_step, fp16_step = result.steps
    assert onnx_step.path == tmp_path / "model.onnx" == result.paths.onnx and onnx_step.parity.passed
    assert fp16_step.path == tmp_path / "model.fp16.onnx" and fp16_step.arithmetic.passed
    assert onnx_step.parity.comparison.max_abs_logit_diff <= 1e-3 and len(onnx_step.parity.comparison.ious) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.fp16.onnx", "model.onnx"]
    with OnnxRuntimeBackend(fp16_step.path) as backend:
        assert backend.metadata.size_px == 64 and backend.metadata.extra["precision"] == "fp16"


@pytest.mark.skipif(tensorrt_installed(), reason="TensorRT is installed here: the plan is built (tests marked tensorrt)")
def test_export_cli_without_tensorrt_writes_both_onnx_files_then_exits_4(checkpoint_path: Path, tmp_path: Path) -> None:
    model = tmp_path / "model.pt"
    shutil.copy(checkpoint_path, model)
    result = CliRunner().invoke(cli_export.main, [str(model), "--size", "64"])
    assert result.exit_code == 4, result.output
    assert (tmp_path / "model.onnx").is_file() and (tmp_path / "model.fp16.onnx").is_file()
    assert not (tmp_path / "model.plan").exists()
    assert "parity onnxruntime-cpu vs pytorch-cpu" in result.output and ": PASS" in result.output
    assert "weight rounding only" in result.output and "FP16 arithmetic (FP16 emulated with FP32 kernels" in result.output
    assert "calibrated on 2 real images from the shipped samples" in result.output
    assert "needs TensorRT, which is not installed: pip install 'dermseg[tensorrt]'" in result.stderr
    assert "--no-engine" in result.stderr


def test_export_cli_with_no_engine_exits_0_and_honours_output_dir(checkpoint_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(cli_export.main, [str(checkpoint_path), "-o", str(out), "--no-engine"])  # no --size
    assert result.exit_code == 0, result.output
    assert (out / f"{checkpoint_path.stem}.onnx").is_file() and (out / f"{checkpoint_path.stem}.fp16.onnx").is_file()
    with OnnxRuntimeBackend(out / f"{checkpoint_path.stem}.onnx") as backend:
        assert backend.metadata.size_px == 64  # the size the checkpoint was trained at, not 1024
    assert "size: 64 px (the size the checkpoint was trained at)" in result.output
    assert "not built: plan (--formats onnx,fp16); build it with dermseg-export" in result.output
    assert "--size 64 --formats plan" in result.output
    assert "ONNX (FP16): check passed in" in result.output and "next: dermseg-run --engine" in result.output


@pytest.mark.parametrize(("formats", "built", "absent"), [
    ("onnx-int8", ["model.onnx", "model.int8.onnx"], ["model.fp16.onnx"]),
    ("fp16", ["model.onnx", "model.fp16.onnx"], []),
])
def test_export_formats_build_what_is_asked_and_what_it_needs(
    checkpoint_path: Path, tmp_path: Path, formats: str, built: list[str], absent: list[str]
) -> None:
    model = tmp_path / "model.pt"
    shutil.copy(checkpoint_path, model)
    int8 = ["--calib", str(SAMPLES_DIR / "images"), "--int8-calib-count", "4", "--int8-check-count", "4",
            "--int8-min-iou", "0.5"] if "int8" in formats else []  # a random-weight model: too fragile for 0.99
    result = CliRunner().invoke(cli_export.main, [str(model), "--size", "64", "--formats", formats, *int8])
    assert result.exit_code == 0, result.output
    assert all((tmp_path / name).is_file() for name in built) and not any((tmp_path / n).exists() for n in absent)
    assert "FP16 arithmetic" in result.output if "model.fp16.onnx" in built else "FP16 arithmetic" not in result.output
    assert "ONNX (FP32): check passed in" in result.output and "MB)" in result.output
    assert ("ONNX (INT8): check passed in" in result.output) == ("int8" in formats)


@pytest.mark.parametrize(("args", "message"), [
    (["--formats", "onnx,engine"], "--formats onnx,engine: use a comma-separated list of onnx, fp16, plan"),
    (["--formats", "plan", "--no-engine"], "--no-engine leaves the plan out"),
])
def test_bad_formats_are_usage_errors(checkpoint_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli_export.main, [str(checkpoint_path), "--size", "64", *args])
    assert result.exit_code == 2 and message in result.stderr


def test_a_failed_parity_check_keeps_the_onnx_as_failed_and_removes_older_exports(
    checkpoint_path: Path, tmp_path: Path
) -> None:
    """`--atol 0` asks ONNX Runtime for PyTorch's logits bit for bit: its kernels differ, so the check fails."""
    model = tmp_path / "model.pt"
    shutil.copy(checkpoint_path, model)
    paths = export_paths(model)
    for older in (paths.onnx, paths.fp16_onnx, paths.plan, paths.sidecar):
        older.write_bytes(b"from an earlier export")
    result = CliRunner().invoke(cli_export.main, [str(model), "--size", "64", "--atol", "0"])
    assert result.exit_code == 3, result.output
    assert ": FAIL" in result.output and "kept" in result.output
    assert paths.failed_onnx.is_file() and not paths.onnx.exists()
    assert not paths.fp16_onnx.exists() and not paths.plan.exists() and not paths.sidecar.exists()
    assert "a check failed: model.failed.onnx is kept for inspection only" in result.stderr
    assert "removed model.fp16.onnx" in result.stderr and "removed model.plan" in result.stderr
    with OnnxRuntimeBackend(paths.failed_onnx) as backend:  # still inspectable
        assert backend.metadata.size_px == 64


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


def test_export_names_come_from_one_place(tmp_path: Path) -> None:
    paths = export_paths(tmp_path / "run" / "best.pt")
    assert paths.onnx == tmp_path / "run" / "best.onnx" and paths.fp16_onnx.name == "best.fp16.onnx"
    assert (paths.plan.name, paths.sidecar.name, paths.timing_cache.name) == ("best.plan", "best.plan.json", "best.timing.cache")
    assert (paths.failed_onnx.name, paths.failed_fp16_onnx.name, paths.failed_plan.name) == (
        "best.failed.onnx", "best.fp16.failed.onnx", "best.failed.plan")
    assert export_paths(tmp_path / "best.pt", tmp_path / "out").onnx == tmp_path / "out" / "best.onnx"


def test_compare_logits_counts_two_empty_masks_as_equal() -> None:
    empty = torch.full((2, 1, 8, 8), -3.0)
    report = ParityReport(compare_logits(empty, empty.clone(), 0.0), atol=1e-3, min_worst_iou=0.999)
    assert report.passed and report.comparison.ious == (1.0, 1.0) and report.comparison.max_abs_logit_diff == 0.0
    assert mask_iou(torch.zeros(4, 4), torch.zeros(4, 4)) == 1.0


def test_parity_reports_judge_themselves() -> None:
    reference = torch.full((2, 1, 4, 4), 1.0)
    candidate = reference.clone()
    candidate[0, ..., :2, :] = -1.0
    comparison = compare_logits(reference, candidate, 0.0)
    assert comparison.worst_iou == 0.5 and comparison.mean_iou == 0.75
    assert not ParityReport(comparison, min_worst_iou=0.999).passed
    assert not ParityReport(comparison, min_mean_iou=0.99).passed and ParityReport(comparison, min_mean_iou=0.7).passed
    assert "mean mask IoU >= 0.99: FAIL" in ParityReport(comparison, min_mean_iou=0.99).summary()
    candidate[..., 0, 0] = float("nan")
    nonfinite = compare_logits(reference, candidate, 0.0)
    assert nonfinite.max_abs_logit_diff == float("inf") and not ParityReport(nonfinite).passed
