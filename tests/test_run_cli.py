"""`dermseg-run` end to end on the CPU."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner, Result

from dermseg_deploy import Segmenter
from dermseg_deploy.cli import run as cli_run
from dermseg_deploy.samples import sample_image_paths
from dermseg_deploy.tensorrt.availability import tensorrt_installed
from dermseg_deploy.tensorrt.sidecar import plan_digest, sidecar_path
from dermseg_deploy.util.atomic import TEMP_PREFIX

from .helpers import displayed_size, iou, read_png
from .test_tensorrt_parts import make_sidecar


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli_run.main, [str(a) for a in args])


@pytest.fixture()
def good_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    (folder / "nested" / "deeper").mkdir(parents=True)
    samples = sample_image_paths()
    for path in samples[:3]:
        shutil.copy(path, folder / path.name)
    shutil.copy(samples[3], folder / "nested" / "deeper" / "lesion.JPG")
    return folder


@pytest.fixture()
def mixed_folder(good_folder: Path) -> Path:
    data = sample_image_paths()[4].read_bytes()
    (good_folder / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (good_folder / "empty.jpg").write_bytes(b"")
    (good_folder / "notes.jpg").write_text("this is a text file, not a JPEG\n")
    return good_folder


def test_mixed_folder_masks_the_good_reports_the_bad_and_exits_1(mixed_folder: Path, tmp_path: Path, onnx_path: Path) -> None:
    out = tmp_path / "masks"
    result = run("--engine", onnx_path, mixed_folder, "-o", out, "--quiet")
    assert result.exit_code == 1, result.output
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 3
    for name, reason in (("truncated.jpg", "cannot be decoded"), ("empty.jpg", "empty"), ("notes.jpg", "not an image")):
        assert any(name in line and reason in line for line in error_lines), result.stderr
    expected = {
        out / f"{p.stem}_segmentation.png": p for p in mixed_folder.rglob("*") if p.stem.startswith("ISIC")
    } | {out / "nested" / "deeper" / "lesion_segmentation.png": mixed_folder / "nested" / "deeper" / "lesion.JPG"}
    for mask_path, source in expected.items():
        mask = read_png(mask_path)
        assert mask.shape == displayed_size(source)
        assert set(np.unique(mask).tolist()) <= {0, 255}
    written = {p for p in out.rglob("*.png")}
    assert written == set(expected)
    rows = list(csv.DictReader((out / "manifest.csv").open()))
    assert sorted(r["status"] for r in rows) == ["failed"] * 3 + ["ok"] * 4
    assert all(0.0 <= float(r["lesion_area_fraction"]) <= 1.0 for r in rows if r["status"] == "ok")
    assert "4 segmented, 0 skipped (mask exists), 3 failed" in result.stderr
    assert not [p for p in out.rglob(f"{TEMP_PREFIX}*")]


def test_existing_masks_are_skipped_unless_overwrite(good_folder: Path, tmp_path: Path, onnx_path: Path) -> None:
    out = tmp_path / "masks"
    assert run("--engine", onnx_path, good_folder, "-o", out, "-q").exit_code == 0
    again = run("--engine", onnx_path, good_folder, "-o", out, "-q")
    assert again.exit_code == 0 and "0 segmented, 4 skipped" in again.stderr
    forced = run("--engine", onnx_path, good_folder, "-o", out, "-q", "--overwrite")
    assert forced.exit_code == 0 and "4 segmented, 0 skipped" in forced.stderr


def test_output_folder_and_temp_files_inside_the_input_are_not_inputs(good_folder: Path, onnx_path: Path) -> None:
    out = good_folder / "masks"
    (good_folder / f"{TEMP_PREFIX}leftover.jpg").write_bytes(sample_image_paths()[0].read_bytes())
    assert run("--engine", onnx_path, good_folder, "-o", out, "-q").exit_code == 0
    second = run("--engine", onnx_path, good_folder, "-o", out, "-q", "--overlay", "--overwrite")
    assert second.exit_code == 0 and "4 segmented" in second.stderr
    assert not list(out.rglob(f"*{TEMP_PREFIX}*"))
    assert len(list(out.rglob("*_overlay.jpg"))) == 4
    assert not list(out.rglob("*_segmentation_segmentation.png"))


def test_threshold_changes_the_masks(good_folder: Path, tmp_path: Path, checkpoint_path: Path) -> None:
    fractions = []
    for threshold in ("0.001", "0.999"):
        out = tmp_path / threshold
        assert run("--engine", checkpoint_path, good_folder, "-o", out, "-q", "--threshold", threshold).exit_code == 0
        fractions.append(sum((read_png(p) > 0).mean() for p in out.rglob("*.png")))
    assert fractions[0] > fractions[1]
    assert run("--engine", checkpoint_path, good_folder, "--threshold", "1.5").exit_code == 2


def test_pt_and_onnx_give_the_same_masks(good_folder: Path, tmp_path: Path, checkpoint_path: Path, onnx_path: Path) -> None:
    assert run("--engine", onnx_path, good_folder, "-o", tmp_path / "onnx", "-q").exit_code == 0
    assert run("--engine", checkpoint_path, good_folder, "-o", tmp_path / "pt", "-q", "--size", "64").exit_code == 0
    for mask in (tmp_path / "onnx").rglob("*.png"):
        assert iou(read_png(mask), read_png(tmp_path / "pt" / mask.relative_to(tmp_path / "onnx"))) >= 0.999


@pytest.mark.parametrize("make_args,code,message", [
    (lambda d, m: ["--engine", m, d, "--size", "128"], 2, "exported for 64x64"),
    (lambda d, m: ["--engine", m.with_name("absent.onnx"), d], 2, "model file not found"),
    (lambda d, m: ["--engine", m, d / "absent.jpg"], 2, "input not found"),
    (lambda d, m: ["--engine", m.with_suffix(".txt"), d], 2, "unknown model file type"),
    (lambda d, m: ["--engine", m, d, "--device", "tpu"], 2, "unknown device 'tpu'"),
])
def test_user_errors_exit_2(good_folder: Path, onnx_path: Path, make_args, code: int, message: str) -> None:  # type: ignore[no-untyped-def]
    onnx_path.with_suffix(".txt").write_text("x")
    result = run(*make_args(good_folder, onnx_path))
    assert result.exit_code == code, result.output
    assert message in result.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message for a machine without CUDA")
def test_cuda_requested_without_cuda_exits_4(good_folder: Path, onnx_path: Path) -> None:
    result = run("--engine", onnx_path, good_folder, "--device", "cuda")
    assert result.exit_code == 4 and "CUDA is not available" in result.stderr


def test_help_and_version() -> None:
    assert "Exit codes" in run("--help").output
    assert "dermseg-run, version" in run("--version").output


def test_python_api_segments_files_and_arrays(onnx_path: Path) -> None:
    path = sample_image_paths()[0]
    with Segmenter.open(onnx_path) as segmenter:
        mask = segmenter.segment_file(path)
        assert mask.shape == displayed_size(path) and mask.dtype == np.uint8
        array = np.zeros((50, 70, 3), dtype=np.uint8)
        (from_array,) = segmenter.segment([array])
        assert from_array.shape == (50, 70)


@pytest.mark.skipif(tensorrt_installed(), reason="TensorRT is installed here")
def test_a_tensorrt_plan_without_tensorrt_exits_4_with_the_install_hint(tmp_path: Path) -> None:
    plan = tmp_path / "model.plan"
    plan.write_bytes(b"plan")
    sidecar_path(plan).write_text(make_sidecar(plan_sha256=plan_digest(b"plan")).to_json())
    result = CliRunner().invoke(cli_run.main, ["--engine", str(plan), str(sample_image_paths()[0]), "-o", str(tmp_path)])
    assert result.exit_code == 4, result.output
    assert "needs TensorRT, which is not installed: pip install 'dermseg[tensorrt]'" in result.stderr


def test_a_batch_of_only_bad_inputs_fails_them_and_goes_on(tmp_path: Path, onnx_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    for index in range(4):
        (inputs / f"a{index}_broken.jpg").write_bytes(b"not an image")
    shutil.copy(sample_image_paths()[0], inputs / "z_good.jpg")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli_run.main, ["--engine", str(onnx_path), str(inputs), "-o", str(out), "-q",
                                               "--batch-size", "4"])
    assert result.exit_code == 1, result.output
    assert result.stderr.count("error:") == 4 and (out / "z_good_segmentation.png").is_file()
