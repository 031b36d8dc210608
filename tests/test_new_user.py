"""What a new user meets: ISIC folders with ground truth beside the images, reruns into the same folder,
closing summaries, and a benchmark whose numbers say how far they can be trusted."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result
from PIL import Image

from dermseg_deploy.cli import bench as cli_bench
from dermseg_deploy.cli import run as cli_run
from dermseg_deploy.files.manifest import STATUS_OK, STATUS_SKIPPED, read_manifest
from dermseg_deploy.samples import sample_image_paths


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli_run.main, [str(a) for a in args])


@pytest.fixture()
def isic_folder(tmp_path: Path) -> Path:
    """Two images with their ground truth beside them (2018 and 2016 spellings), and an overlay of a past run."""
    folder = tmp_path / "isic"
    folder.mkdir()
    for path in sample_image_paths()[:2]:
        shutil.copy(path, folder / path.name)
        Image.new("L", (32, 32), 255).save(folder / f"{path.stem}_segmentation.png")
    Image.new("L", (32, 32), 0).save(folder / "ISIC_0000000_Segmentation.PNG")
    Image.new("RGB", (32, 32)).save(folder / "old_overlay.jpg")
    return folder


def test_ground_truth_and_overlays_in_folders_are_passed_over_in_one_line(isic_folder: Path, tmp_path: Path,
                                                                          onnx_path: Path) -> None:
    result = run("--engine", onnx_path, isic_folder, "-o", tmp_path / "out", "-q")
    assert result.exit_code == 0, result.output
    assert {Path(row.file).name for row in read_manifest(tmp_path / "out" / "manifest.csv")} == \
        {p.name for p in sample_image_paths()[:2]}
    lines = [line for line in result.stderr.splitlines() if line.startswith("note: passed over")]
    assert len(lines) == 1
    assert "3 file(s) named like ground-truth masks" in lines[0] and "1 dermseg overlay(s)" in lines[0]


def test_a_ground_truth_file_named_on_the_command_line_is_segmented(isic_folder: Path, tmp_path: Path,
                                                                    onnx_path: Path) -> None:
    named = next(isic_folder.glob("*_segmentation.png"))
    result = run("--engine", onnx_path, named, "-o", tmp_path / "out", "-q")
    assert result.exit_code == 0, result.output
    assert [Path(row.file).name for row in read_manifest(tmp_path / "out" / "manifest.csv")] == [named.name]


def test_a_rerun_keeps_the_earlier_record_and_a_killed_run_gets_its_fraction_from_disk(
    tmp_path: Path, onnx_path: Path
) -> None:
    images = tmp_path / "in"
    images.mkdir()
    for path in sample_image_paths()[:3]:
        shutil.copy(path, images / path.name)
    out = tmp_path / "out"
    assert run("--engine", onnx_path, images, "-o", out, "-q").exit_code == 0
    first = {row.file: row for row in read_manifest(out / "manifest.csv")}
    assert all(row.status == STATUS_OK and row.lesion_area_fraction is not None for row in first.values())
    shutil.copy(sample_image_paths()[3], images / sample_image_paths()[3].name)
    assert run("--engine", onnx_path, images, "-o", out, "-q").exit_code == 0
    second = {row.file: row for row in read_manifest(out / "manifest.csv")}
    assert len(second) == 4
    for file, row in first.items():
        assert second[file] == row  # status, area and time of the run that segmented it
    (out / "manifest.csv").unlink()  # as if the run that wrote the masks had been killed before its manifest
    assert run("--engine", onnx_path, images, "-o", out, "-q").exit_code == 0
    third = {row.file: row for row in read_manifest(out / "manifest.csv")}
    assert all(row.status == STATUS_SKIPPED for row in third.values())
    for file, row in second.items():
        assert row.lesion_area_fraction is not None and third[file].lesion_area_fraction is not None
        assert abs(third[file].lesion_area_fraction - row.lesion_area_fraction) < 1e-6


def test_the_summary_gives_milliseconds_per_stage_and_counts_empty_masks(tmp_path: Path, onnx_path: Path) -> None:
    copy = tmp_path / "in" / "copy.jpg"
    copy.parent.mkdir()
    shutil.copy(sample_image_paths()[0], copy)
    result = run("--engine", onnx_path, copy.parent, sample_image_paths()[0], "-o", tmp_path / "out", "-q",
                 "--threshold", "0.999999")
    assert result.exit_code == 0, result.output
    line = next(line for line in result.stderr.splitlines() if line.startswith("per image:"))
    for stage in ("decode", "preprocess", "inference", "postprocess", "write"):
        assert f"{stage} " in line and " ms" in line
    assert "no lesion found in 2 image(s)" in result.stderr
    rows = read_manifest(tmp_path / "out" / "manifest.csv")
    assert all(row.note == "no lesion found (empty mask)" and row.lesion_area_fraction == 0.0 for row in rows)


def test_bench_refuses_batches_larger_than_the_images(onnx_path: Path, tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    for path in sample_image_paths()[:2]:
        shutil.copy(path, images / path.name)
    result = CliRunner().invoke(cli_bench.main, ["--engine", str(onnx_path), "--images", str(images),
                                                 "--batch-sizes", "1,4", "--device", "cpu"])
    assert result.exit_code == 2 and "--batch-sizes 1,4: 4 exceed the 2 image(s)" in result.stderr


def test_bench_warns_about_thin_percentiles_and_draws_the_plot(onnx_path: Path, tmp_path: Path) -> None:
    args = ["--engine", str(onnx_path), "--batch-sizes", "1,2", "--device", "cpu", "--min-iterations", "3",
            "--min-seconds", "0", "--warmup", "1", "--json", str(tmp_path / "bench.json"), "--plot",
            str(tmp_path / "bench.png")]
    result = CliRunner().invoke(cli_bench.main, args)
    assert result.exit_code == 0, result.output
    assert "p90/p95/p99 rest on 3 samples (fewer than 20" in result.output
    assert "[1/2]" in result.stderr and "batch" in result.stderr  # the progress bars
    document = json.loads((tmp_path / "bench.json").read_text())
    assert document["environment"]["cpu"] and document["environment"]["cpu"] != document["environment"]["machine"]
    assert len(document["warnings"]) == 2
    with Image.open(tmp_path / "bench.png") as plot:
        assert plot.size[0] > 800 and np.asarray(plot.convert("L")).std() > 10


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="a GPU is here: the CUDA provider may be available")
def test_bench_with_a_gpu_provider_and_no_gpu_is_an_unavailable_backend(onnx_path: Path) -> None:
    result = CliRunner().invoke(cli_bench.main, ["--engine", f"ort-cuda:{onnx_path}", "--batch-sizes", "1"])
    assert result.exit_code == 4, result.output
    assert "CUDA is not available on this machine" in result.stderr
