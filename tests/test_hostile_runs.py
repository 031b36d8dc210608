"""Ordinary events that used to lose records or crash: SIGTERM in training, undecodable names, a deleted output
folder, spreadsheet formulas, static-batch and broken ONNX files, symlinked folders, flags that do not apply."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner, Result

from dermseg_deploy.cli import run as cli_run
from dermseg_deploy.errors import UserError
from dermseg_deploy.files import outputs
from dermseg_deploy.files.manifest import STATUS_FAILED, STATUS_OK, ManifestRow, read_manifest, write_manifest
from dermseg_deploy.model.checkpoint import load_checkpoint
from dermseg_deploy.samples import SAMPLES_DIR, sample_image_paths
from dermseg_train.run_state import TRAINING_STATE_KEY

from .helpers import read_png
from .hostile_models import tiny_onnx

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli_run.main, [str(a) for a in args])


def _images(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    samples = sample_image_paths()
    paths = [folder / f"image-{index}.jpg" for index in range(count)]
    for index, path in enumerate(paths):
        shutil.copy(samples[index % len(samples)], path)
    return paths


def test_a_file_name_that_is_not_utf8_keeps_the_manifest_whole(tmp_path: Path, onnx_path: Path) -> None:
    folder = tmp_path / "in"
    _images(folder, 1)
    odd = os.fsdecode(bytes(folder) + b"/l\xe9sion-\xff.jpg")  # Latin-1 bytes, as an old camera share may hold
    shutil.copy(sample_image_paths()[0], odd)
    result = run("--engine", onnx_path, folder, "-o", tmp_path / "out", "-q")
    assert result.exit_code == 0, result.output
    rows = read_manifest(tmp_path / "out" / "manifest.csv")
    assert len(rows) == 2 and all(row.status == STATUS_OK for row in rows)
    assert {row.file for row in rows} == {str(folder / "image-0.jpg"), odd}  # the exact names: lossless
    assert all(Path(row.mask_path).is_file() for row in rows)


def test_formula_cells_are_neutralised_and_read_back_as_written(tmp_path: Path) -> None:
    rows = [ManifestRow("=HYPERLINK(\"http://x\")", STATUS_OK, "+mask.png", 0.5, 0.1),
            ManifestRow("@sum.jpg", STATUS_FAILED, error="-1 is not an image", note="'quoted"),
            ManifestRow("plain.jpg", STATUS_FAILED, error="\tTab")]
    path = write_manifest(tmp_path / "manifest.csv", rows)
    text = path.read_text()
    assert "'=HYPERLINK" in text and "'+mask.png" in text and "'@sum.jpg" in text and "'-1 is not" in text
    assert "''quoted" in text and "'\tTab" in text
    assert not any(cell.startswith(("=", "+", "-", "@")) for line in text.splitlines()[1:] for cell in line.split(","))
    assert read_manifest(path) == rows


def test_a_deleted_output_folder_is_not_recreated_and_each_lost_mask_says_so(
    tmp_path: Path, onnx_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _images(tmp_path / "in", 3)
    out = tmp_path / "out"
    real_encode = outputs.encode_png
    calls = []

    def encode_then_delete(mask: torch.Tensor) -> bytes:
        calls.append(1)
        if len(calls) == 2:
            shutil.rmtree(out)  # someone removes the folder while the run writes into it
        return real_encode(mask)

    monkeypatch.setattr(outputs, "encode_png", encode_then_delete)
    result = run("--engine", onnx_path, tmp_path / "in", "-o", out, "--batch-size", "1", "--io-threads", "1", "-q")
    assert result.exit_code == 1, result.output
    assert not out.exists(), "the output folder was silently recreated"
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert any("image-0.jpg: its mask" in line and "is gone (deleted after it was written)" in line for line in errors)
    assert sum("no longer exists (deleted during the run?)" in line for line in errors) == 2
    assert any("cannot write" in line and "manifest.csv" in line for line in errors)
    assert "Traceback" not in result.output


def test_a_static_batch_onnx_runs_in_batches_of_its_size(tmp_path: Path) -> None:
    dynamic = tiny_onnx(tmp_path / "dynamic.onnx")
    static = tiny_onnx(tmp_path / "static.onnx", in_shape=[1, 3, 64, 64], out_shape=[1, 1, 64, 64])
    _images(tmp_path / "in", 3)
    for model, out in ((dynamic, "a"), (static, "b")):
        result = run("--engine", model, tmp_path / "in", "-o", tmp_path / out, "--batch-size", "4", "-q")
        assert result.exit_code == 0, result.output
    for index in range(3):
        name = f"image-{index}_segmentation.png"
        assert np.array_equal(read_png(tmp_path / "a" / name), read_png(tmp_path / "b" / name))


def test_nan_logits_fail_their_images_instead_of_giving_empty_masks(tmp_path: Path) -> None:
    import onnx
    from onnx import numpy_helper

    model = tiny_onnx(tmp_path / "nan.onnx")
    proto = onnx.load(model)
    weight = numpy_helper.to_array(proto.graph.initializer[0]).copy()
    weight[0, 0] = np.nan
    proto.graph.initializer[0].CopyFrom(numpy_helper.from_array(weight, "weight"))
    onnx.save(proto, model)
    _images(tmp_path / "in", 2)
    result = run("--engine", model, tmp_path / "in", "-o", tmp_path / "out", "-q")
    assert result.exit_code == 1, result.output
    rows = read_manifest(tmp_path / "out" / "manifest.csv")
    assert [row.status for row in rows] == [STATUS_FAILED, STATUS_FAILED]
    assert all("NaN or infinite logits" in row.error for row in rows)
    assert not list((tmp_path / "out").glob("*_segmentation.png"))


def test_symlinked_folders_are_followed_and_loops_noted(tmp_path: Path, onnx_path: Path) -> None:
    root = tmp_path / "in"
    _images(root, 1)
    elsewhere = tmp_path / "elsewhere"
    _images(elsewhere, 2)
    (root / "linked").symlink_to(elsewhere, target_is_directory=True)
    (elsewhere / "back").symlink_to(root, target_is_directory=True)  # a loop
    result = run("--engine", onnx_path, root, "-o", tmp_path / "out", "-q")
    assert result.exit_code == 0, result.output
    files = {Path(row.file).relative_to(root).as_posix() for row in read_manifest(tmp_path / "out" / "manifest.csv")}
    assert files == {"image-0.jpg", "linked/image-0.jpg", "linked/image-1.jpg"}
    assert "note: " in result.stderr and "linked/back: leads to the same folder as" in result.stderr


@pytest.mark.parametrize(("flags", "message", "code"), [
    (["--device", "cpu:3"], "unsupported device 'cpu:3'", 2),
    (["--trust-plan"], "--trust-plan: not used by a .onnx model", 2),
    (["--channels-last"], "--channels-last: not used by a .onnx model", 2),
    (["--batch-size", "100000"], "100000 is not in the range 1<=x<=256", 2),
    (["--io-threads", "100000"], "100000 is not in the range 1<=x<=256", 2),
])
def test_flags_that_cannot_apply_are_usage_errors(tmp_path: Path, onnx_path: Path, flags: list[str], message: str,
                                                  code: int) -> None:
    result = run("--engine", onnx_path, sample_image_paths()[0], "-o", tmp_path / "out", *flags)
    assert result.exit_code == code and message in result.stderr, result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present: the CUDA provider may well be available")
def test_the_cuda_provider_without_a_gpu_is_an_unavailable_backend(tmp_path: Path, onnx_path: Path) -> None:
    result = run("--engine", onnx_path, sample_image_paths()[0], "-o", tmp_path / "out", "--provider", "cuda")
    assert result.exit_code == 4, result.output
    assert "CUDA is not available" in result.stderr


def test_an_oversized_size_flag_is_refused_before_anything_is_loaded(tmp_path: Path, onnx_path: Path) -> None:
    result = run("--engine", onnx_path, sample_image_paths()[0], "-o", tmp_path / "out", "--size", "8192")
    assert result.exit_code == 2 and "--size 8192: must be a positive multiple of 32, at most 4096" in result.stderr
    with pytest.raises(UserError):
        from dermseg_deploy.model.sizes import require_valid_size

        require_valid_size(4128)


@pytest.mark.slow
def test_sigterm_in_training_saves_the_step_and_resume_finishes_the_run(tmp_path: Path) -> None:
    out = tmp_path / "model.pt"
    args = [sys.executable, "-m", "dermseg_train.cli", "--data", str(SAMPLES_DIR), "--out", str(out), "--size", "64",
            "--steps", "30", "--batch-size", "2", "--encoder-weights", "none", "--workers", "0", "--val-count", "2",
            "--device", "cpu"]
    log = tmp_path / "stderr.txt"
    with log.open("w") as handle:
        process = subprocess.Popen(args, cwd=ROOT, stderr=handle, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while "loss=" not in log.read_text() and time.monotonic() < deadline:  # the first step is done
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=120) == 143, log.read_text()
    text = log.read_text()
    assert "SIGTERM: saving" in text and "--resume" in text and "Traceback" not in text
    last = out.with_name("model.last.pt")
    progress = load_checkpoint(last).extra[TRAINING_STATE_KEY]["progress"]
    assert 1 <= progress["global_step"] < 30
    records = [json.loads(line) for line in out.with_name("model.log.jsonl").read_text().splitlines()]
    assert records[-1]["stopped"]["global_step"] == progress["global_step"]
    resumed = subprocess.run([*args, "--resume", str(last)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert load_checkpoint(last).extra[TRAINING_STATE_KEY]["progress"]["global_step"] == 30
