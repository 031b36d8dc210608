"""`dermseg-eval` on a model, on its ONNX export, and on a folder of written masks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from dermseg_deploy.cli import eval as eval_cli
from dermseg_deploy.cli import run as cli_run
from dermseg_deploy.files.manifest import read_manifest
from dermseg_deploy.samples import SAMPLES_DIR


def test_pt_and_onnx_give_the_same_scores(tmp_path: Path, checkpoint_path: Path, onnx_path: Path) -> None:
    scores = []
    for model in (checkpoint_path, onnx_path):
        json_path = tmp_path / f"{model.suffix[1:]}.json"
        result = CliRunner().invoke(eval_cli.main, [str(SAMPLES_DIR), "--engine", str(model), "--size", "64",
                                                    "--json", str(json_path)])
        assert result.exit_code == 0, result.output
        scores.append(json.loads(json_path.read_text()))
        assert (tmp_path / "eval.csv").is_file()
    for name in ("jaccard", "thresholded_jaccard", "dice", "sensitivity", "specificity"):
        assert abs(scores[0][name] - scores[1][name]) < 5e-4, name
    assert scores[0]["images"] == 8 and "large_lesions" in scores[0]


def test_masks_mode_scores_written_masks_like_the_model(tmp_path: Path, onnx_path: Path) -> None:
    masks = tmp_path / "masks"
    assert CliRunner().invoke(cli_run.main, ["--engine", str(onnx_path), str(SAMPLES_DIR / "images"), "-o",
                                             str(masks), "-q"]).exit_code == 0
    from_model, from_masks = tmp_path / "model.json", tmp_path / "masks.json"
    CliRunner().invoke(eval_cli.main, [str(SAMPLES_DIR), "--engine", str(onnx_path), "--json", str(from_model)])
    result = CliRunner().invoke(eval_cli.main, [str(SAMPLES_DIR), "--masks", str(masks), "--json", str(from_masks)])
    assert result.exit_code == 0, result.output
    a, b = json.loads(from_model.read_text()), json.loads(from_masks.read_text())
    assert a["jaccard"] == pytest.approx(b["jaccard"], abs=1e-12)


def test_missing_and_wrongly_sized_predictions_count_zero_and_are_listed(tmp_path: Path, onnx_path: Path) -> None:
    masks = tmp_path / "masks"
    CliRunner().invoke(cli_run.main, ["--engine", str(onnx_path), str(SAMPLES_DIR / "images"), "-o", str(masks), "-q"])
    victims = sorted(masks.glob("*_segmentation.png"))
    victims[0].unlink()
    Image.new("L", (10, 10)).save(victims[1])
    json_path = tmp_path / "scores.json"
    result = CliRunner().invoke(eval_cli.main, [str(SAMPLES_DIR), "--masks", str(masks), "--json", str(json_path)])
    assert result.exit_code == 1
    report = json.loads(json_path.read_text())
    assert len(report["failed"]) == 2 and report["images"] == 8
    assert "prediction is missing" in result.stderr and "prediction is (10, 10)" in result.stderr


def test_ids_restrict_the_images(tmp_path: Path, onnx_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("ISIC_0001769\nISIC_0007332\n")
    result = CliRunner().invoke(eval_cli.main, [str(SAMPLES_DIR), "--engine", str(onnx_path), "--ids", str(ids)])
    assert result.exit_code == 0 and "all (2 images)" in result.output


def test_usage_errors(tmp_path: Path, onnx_path: Path) -> None:
    both = CliRunner().invoke(eval_cli.main, [str(SAMPLES_DIR), "--engine", str(onnx_path), "--masks", str(tmp_path)])
    assert both.exit_code == 2 and "not both" in both.stderr  # neither: the shipped model (test_shipped_model.py)
    data = tmp_path / "data"
    shutil.copytree(SAMPLES_DIR / "images", data / "images")
    result = CliRunner().invoke(eval_cli.main, [str(data), "--engine", str(onnx_path)])
    assert result.exit_code == 2 and "no mask folder" in result.stderr


def test_save_masks_writes_the_scored_masks_as_dermseg_run_does(tmp_path: Path, onnx_path: Path) -> None:
    saved, run = tmp_path / "saved", tmp_path / "run"
    result = CliRunner().invoke(eval_cli.main, [str(SAMPLES_DIR), "--engine", str(onnx_path), "--save-masks", str(saved)])
    assert result.exit_code == 0, result.output
    assert CliRunner().invoke(cli_run.main, ["--engine", str(onnx_path), str(SAMPLES_DIR / "images"), "-o", str(run),
                                             "-q"]).exit_code == 0
    names = sorted(p.name for p in run.glob("*_segmentation.png"))
    assert len(names) == 8 and sorted(p.name for p in saved.glob("*_segmentation.png")) == names
    assert all((saved / name).read_bytes() == (run / name).read_bytes() for name in names)
    rows = read_manifest(saved / "manifest.csv")
    assert [r.status for r in rows] == ["ok"] * 8 and all(Path(r.mask_path).parent == saved for r in rows)
    assert CliRunner().invoke(eval_cli.main, [str(SAMPLES_DIR), "--masks", str(run), "--save-masks", str(saved)]).exit_code == 2


def test_an_image_that_cannot_be_decoded_counts_zero_and_is_listed(tmp_path: Path, onnx_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(SAMPLES_DIR, data, ignore=shutil.ignore_patterns("*.py", "*.md"))
    victim = sorted((data / "images").glob("*.jpg"))[0]
    victim.write_bytes(victim.read_bytes()[:100])
    json_path = tmp_path / "scores.json"
    result = CliRunner().invoke(eval_cli.main, [str(data), "--engine", str(onnx_path), "--json", str(json_path)])
    assert result.exit_code == 1, result.output
    report = json.loads(json_path.read_text())
    assert report["images"] == 8 and list(report["failed"]) == [victim.stem]
    assert f"error: {victim.stem}: {victim}: cannot be decoded" in result.stderr
