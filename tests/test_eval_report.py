"""`dermseg-eval --report DIR`: what the folder holds, the order of its pictures and CSV, its figure with and without
matplotlib, and that it is written whole or not at all (the browser checks of the page are in test_pages.py)."""

from __future__ import annotations

import builtins
import csv
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from dermseg_deploy.cli import eval as eval_cli
from dermseg_deploy.evaluation import report as report_module
from dermseg_deploy.evaluation.metrics import ImageScore
from dermseg_deploy.evaluation.report import ReportOptions, choose_pictures
from dermseg_deploy.evaluation.scoring import ImageEvaluation
from dermseg_deploy.files.overlay import PREDICTION_RGB, TRUTH_RGB, comparison_strip
from dermseg_deploy.samples import SAMPLES_DIR


def _eval(onnx_path: Path, report: Path, *extra: str) -> Any:
    return CliRunner().invoke(eval_cli.main, [str(SAMPLES_DIR), "--engine", str(onnx_path), "--device", "cpu",
                                              "--report", str(report), *extra])


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_the_report_holds_the_page_its_pictures_figure_and_sorted_csv(onnx_path: Path, tmp_path: Path) -> None:
    report = tmp_path / "report"
    result = _eval(onnx_path, report, "--report-worst", "2", "--report-sample", "3")
    assert result.exit_code == 0, result.output
    assert f"report: {report / 'index.html'} (5 pictures," in result.output
    rows = _rows(report / "per_image.csv")
    assert len(rows) == 8 and [float(r["jaccard"]) for r in rows] == sorted(float(r["jaccard"]) for r in rows)
    keys = [(float(r["jaccard"]), r["image_id"]) for r in rows]
    assert keys == sorted(keys)  # ties by id
    pictures = sorted((report / "pictures").iterdir())
    assert len(pictures) == 5 and all(r["picture"] for r in rows[:2])  # the two worst have pictures
    with Image.open(pictures[0]) as picture:
        assert picture.format == "JPEG" and picture.height <= 192
    page = (report / "index.html").read_text()
    assert "onnxruntime-cpu" in page and "64 px" in page and "test-time augmentation" in page
    assert "<p id='borders'>Borders (8 images" in page and all(r["boundary_f1"] for r in rows)
    assert "<img id='histogram' src='histogram.png'" in page and (report / "histogram.png").is_file()
    assert "http://" not in page and "https://" not in page


def test_without_matplotlib_the_page_says_the_figure_is_missing(onnx_path: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_matplotlib(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.split(".")[0] == "matplotlib":
            raise ImportError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    result = _eval(onnx_path, tmp_path / "report", "--report-worst", "1", "--report-sample", "0")
    assert result.exit_code == 0, result.output
    page = (tmp_path / "report" / "index.html").read_text()
    assert "The histogram is missing: matplotlib is not installed; add the figures with pip install 'dermseg[plot]'" \
        in page.replace("&#x27;", "'")
    assert not (tmp_path / "report" / "histogram.png").exists()


def test_a_new_report_replaces_an_old_one_whole_and_never_a_folder_of_other_files(
        onnx_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    report = tmp_path / "report"
    assert _eval(onnx_path, report, "--report-worst", "1", "--report-sample", "0").exit_code == 0
    before = {p.name: p.read_bytes() for p in report.rglob("*") if p.is_file()}

    def broken(content: Any) -> str:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(report_module, "render_page", broken)
    failed = _eval(onnx_path, report, "--report-worst", "3")
    assert failed.exit_code == 2 and failed.stderr.count("\n") == 1 and "No space left on device" in failed.stderr
    assert {p.name: p.read_bytes() for p in report.rglob("*") if p.is_file()} == before  # the old report, whole
    assert [p.name for p in tmp_path.iterdir()] == ["report"]  # no half-built folder left beside it
    monkeypatch.undo()
    assert _eval(onnx_path, report, "--report-worst", "3", "--report-sample", "0").exit_code == 0
    assert len(list((report / "pictures").iterdir())) == 3
    other = tmp_path / "notes"
    other.mkdir()
    (other / "mine.txt").write_text("keep me")
    result = _eval(onnx_path, other)
    assert result.exit_code == 2 and "not a dermseg report and is not empty" in result.stderr
    assert (other / "mine.txt").read_text() == "keep me"


def _evaluation(image_id: str, tp: int, fp: int) -> ImageEvaluation:
    return ImageEvaluation(image_id, 0.1, ImageScore(tp, fp, 0, 100))


def test_the_worst_come_first_ties_by_id_and_the_sample_is_seeded() -> None:
    evaluations = [_evaluation("c", 1, 1), _evaluation("a", 1, 1), _evaluation("b", 9, 1), _evaluation("d", 1, 3),
                   ImageEvaluation("e", 0.2, None, "cannot be decoded")]
    worst, sample = choose_pictures(evaluations, ReportOptions(worst=3, sample=1))
    assert [e.image_id for e in worst] == ["e", "d", "a"]  # failed (0), 0.25, then 0.5 by id
    again = choose_pictures(evaluations, ReportOptions(worst=3, sample=1))[1]
    assert sample == again and sample[0].image_id in {"b", "c"}


def test_a_comparison_strip_draws_truth_and_prediction_in_their_colours() -> None:
    image = np.full((300, 400, 3), 128, dtype=np.uint8)
    truth = np.zeros((300, 400), dtype=np.uint8)
    truth[50:150, 50:150] = 255
    prediction = np.zeros_like(truth)
    prediction[150:250, 250:350] = 255
    strip = comparison_strip(image, truth, prediction, panel_px=200)
    assert strip.shape[0] == 150 and strip.shape[1] > 3 * 200
    third = strip[:, -200:]
    assert (third == TRUTH_RGB).all(axis=2)[:75].any() and not (third == TRUTH_RGB).all(axis=2)[80:].any()
    assert (third == PREDICTION_RGB).all(axis=2)[75:].any() and not (third == PREDICTION_RGB).all(axis=2)[:70].any()
