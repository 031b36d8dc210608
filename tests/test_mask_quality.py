"""The predicted Jaccard of every mask: its signals by hand and the same on host and device, the calibration fitted,
carried in a model file and refused when hostile, and where users see it (manifest and review list, overlay, the
Python API, eval's figures and --fit-quality, --masks reading the manifest)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from dermseg_deploy.cli import eval as cli_eval
from dermseg_deploy.cli import run as cli_run
from dermseg_deploy.core.mask_options import MaskOptions
from dermseg_deploy.core.quality import QualityScorer, host_signals
from dermseg_deploy.core.quality_device import device_signals
from dermseg_deploy.errors import ModelFileError
from dermseg_deploy.evaluation.quality_fit import fit_quality_model, isotonic
from dermseg_deploy.evaluation.quality_metrics import auroc_of_failures, least_confident_failures
from dermseg_deploy.files.manifest import read_manifest
from dermseg_deploy.files.overlay import REVIEW_RGB
from dermseg_deploy.model.metadata import ModelMetadata
from dermseg_deploy.model.quality_model import FittedOn, QualityModel
from dermseg_deploy.samples import SAMPLES_DIR, sample_image_paths
from dermseg_deploy.segment.segmenter import Segmenter

FITTED = FittedOn(40, "test", "none", "none", 0.5)


def test_the_signals_by_hand() -> None:
    logits = np.full((1, 1, 8, 8), -20.0, dtype=np.float32)
    logits[0, 0, 2:4, 2:6] = 20.0  # a confident 2 x 4 lesion above the centre
    masks = (logits > 0).astype(np.uint8)
    soft, distance, compact = host_signals(logits, masks)[0]
    assert soft == pytest.approx(1.0, abs=1e-6)
    assert distance == pytest.approx(0.125)  # pixel centres 2.5 and 3.5 of 8 rows: 0.375, an eighth above the middle
    assert compact == pytest.approx(math.log(8**2 / (4 * math.pi * 8)))  # every pixel of a 2-wide band is on its edge
    half = np.zeros((1, 1, 8, 8), dtype=np.float32)  # p = 0.5 everywhere, nothing above the threshold
    soft_empty, distance_empty, compact_empty = host_signals(half, (half > 0).astype(np.uint8))[0]
    assert (soft_empty, distance_empty, compact_empty) == (0.0, pytest.approx(math.sqrt(0.5)), 3.0)


def test_host_and_device_signals_agree_to_1e_3() -> None:
    logits = np.random.default_rng(0).normal(0, 4, (3, 1, 64, 64)).astype(np.float32)
    logits[2] = -30.0  # an empty mask
    masks = (logits > 0.1).astype(np.uint8)
    host = host_signals(logits, masks)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        on_device = device_signals(torch.from_numpy(logits).to(device), torch.from_numpy(masks).to(device))
        assert np.abs(on_device.cpu().numpy() - host).max() < 1e-3, device


def test_isotonic_fit_and_the_calibration_round_trip() -> None:
    assert isotonic(np.array([1.0, 3.0, 2.0, 4.0])).tolist() == [1.0, 2.5, 2.5, 4.0]
    rng = np.random.default_rng(1)
    jaccard = rng.uniform(0.2, 1.0, 200)
    signals = np.c_[jaccard + rng.normal(0, 0.05, 200), rng.uniform(0, 0.3, 200), rng.normal(0, 0.3, 200)]
    model = fit_quality_model(signals, jaccard, FITTED)
    predicted = np.array([model.predict(row) for row in signals])
    assert np.abs(predicted - jaccard).mean() < 0.06 and all(0.0 <= p <= 1.0 for p in predicted)
    assert np.all(np.diff([model.predict([s, 0.1, 0.0]) for s in np.linspace(0, 1, 50)]) >= -1e-12)  # monotone
    again = QualityModel.from_dict(json.loads(json.dumps(model.to_dict())))
    assert again == model
    assert auroc_of_failures(np.array([0.1, 0.2, 0.9, 0.8]), np.array([0.3, 0.5, 0.9, 0.7])) == 1.0
    assert least_confident_failures(np.array([0.1, 0.9, 0.5]), np.array([0.2, 0.9, 0.9]), share=0.34) == (1, 1)


HOSTILE = [
    ("not monotone", {"knots": {"score": [0.0, 1.0, 2.0], "jaccard": [0.2, 0.9, 0.5]}}, "must not decrease"),
    ("NaN", {"intercept": float("nan")}, "must be finite"),
    ("out of [0, 1]", {"knots": {"score": [0.0, 1.0], "jaccard": [0.1, 1.7]}}, "must lie in \\[0, 1\\]"),
    ("too long", {"knots": {"score": list(range(65)), "jaccard": [0.5] * 65}}, "2 to 64 numbers"),
    ("scores not increasing", {"knots": {"score": [1.0, 1.0], "jaccard": [0.2, 0.3]}}, "strictly increasing"),
    ("unknown signal", {"signals": ["soft_jaccard", "mood"], "weights": [1.0, 1.0]}, "distinct names among"),
    ("weights of the wrong length", {"weights": [1.0]}, "3 to 3 numbers"),
    ("unknown key", {"surprise": 1}, "unknown keys"),
]


@pytest.mark.parametrize(("case", "change", "expected"), HOSTILE, ids=[c for c, _, _ in HOSTILE])
def test_hostile_calibrations_are_refused_with_one_line(case: str, change: dict[str, Any], expected: str) -> None:
    valid = QualityModel(("soft_jaccard", "centre_distance", "log_compactness"), 0.1, (0.8, -0.2, -0.05), (0.0, 1.0),
                         (0.3, 0.9), FITTED).to_dict()
    metadata = ModelMetadata(size_px=64).to_dict() | {"extra": {"quality": valid | change}}
    with pytest.raises(ModelFileError, match=expected):  # as a checkpoint carries it
        ModelMetadata.from_dict(metadata)
    with pytest.raises(ModelFileError, match="NaN is not a JSON number" if case == "NaN" else expected):  # as ONNX does
        ModelMetadata.from_json(json.dumps(metadata, allow_nan=True))


def test_a_calibration_holds_only_under_its_own_settings() -> None:
    calibration = QualityModel(("soft_jaccard",), 0.0, (1.0,), (0.0, 1.0), (0.2, 0.8), FITTED)
    metadata = ModelMetadata(size_px=64, extra={"quality": calibration.to_dict()})
    scorer = QualityScorer.for_run(metadata, MaskOptions())
    assert scorer.score([0.5, 0.0, 0.0]).predicted_jaccard == pytest.approx(0.5) and scorer.calibration is not None
    other = QualityScorer.for_run(metadata, MaskOptions.parse("flips", "none"))
    quality = other.score([0.5, 0.0, 0.0])
    assert not quality.calibrated and quality.predicted_jaccard == 0.5 and "fitted with --tta none" in other.describe()
    moved = QualityScorer.for_run(metadata.with_updates(threshold=0.4), MaskOptions())
    assert moved.calibration is None


@pytest.mark.slow
def test_run_eval_and_the_api_show_it_and_eval_fits_it(tmp_path: Path, onnx_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(SAMPLES_DIR / "images", data / "images")
    shutil.copytree(SAMPLES_DIR / "masks", data / "masks")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli_run.main, ["--engine", str(onnx_path), str(data / "images"), "-o", str(out), "-q",
                                               "--overlay", "--review-below", "1.0"])
    assert result.exit_code == 0, result.output
    rows = read_manifest(out / "manifest.csv")
    assert all(row.predicted_jaccard is not None and row.review == "yes" for row in rows)  # all below 1.0
    assert (out / "review.txt").read_text().splitlines() == [row.file for row in rows]
    assert "review: 8 of 8 mask(s)" in result.stderr and "uncalibrated (the model carries no calibration)" in result.stderr
    with Image.open(next(out.glob("*_overlay.jpg"))) as overlay:  # flagged: an orange frame
        corner = np.asarray(overlay.convert("RGB"))[1, overlay.width // 2].astype(int)
    assert np.abs(corner - np.array(REVIEW_RGB)).max() < 40, corner

    with Segmenter.open(onnx_path, "cpu") as segmenter:
        quality = segmenter.segment(sample_image_paths()[0], quality=True)
    soft = quality.predicted_jaccard
    assert quality.mask.ndim == 2 and 0.0 <= soft <= 1.0 and not quality.calibrated
    assert soft == pytest.approx(rows[0].predicted_jaccard, abs=1e-4)  # the API and dermseg-run: the same number

    calibrated = tmp_path / "calibrated.onnx"
    shutil.copytree(data, tmp_path / "many")  # 8 pairs are too few to fit on: repeat them under other ids
    for copy in range(1, 4):
        for image in sorted((data / "images").iterdir()):
            shutil.copy(image, tmp_path / "many" / "images" / f"{image.stem}{copy}.jpg")
            shutil.copy(data / "masks" / f"{image.stem}_segmentation.png",
                        tmp_path / "many" / "masks" / f"{image.stem}{copy}_segmentation.png")
    fitted = CliRunner().invoke(cli_eval.main, [str(tmp_path / "many"), "--engine", str(onnx_path), "--fit-quality",
                                                str(calibrated)])
    assert fitted.exit_code == 0, fitted.output
    assert "calibration fitted on 32 images" in fitted.stderr
    assert ModelMetadata.from_json(_onnx_metadata(calibrated)).quality is not None
    scored = CliRunner().invoke(cli_eval.main, [str(data), "--engine", str(calibrated), "--json", str(tmp_path / "e.json"),
                                                "--report", str(tmp_path / "report")])
    assert scored.exit_code == 0, scored.output
    assert "predicted Jaccard (calibrated on 32 labelled images (many))" in scored.stdout
    report = json.loads((tmp_path / "e.json").read_text())["quality"]
    assert report["images"] == 8 and report["calibrated"] and "auroc_minus_raw" in report
    assert (tmp_path / "report" / "predicted-jaccard.png").is_file()
    assert "predicted_jaccard" in (tmp_path / "eval.csv").read_text().splitlines()[0]

    from_manifest = CliRunner().invoke(cli_eval.main, [str(data), "--masks", str(out)])
    assert "predicted Jaccard (from manifest.csv) on 8 masks" in from_manifest.stdout, from_manifest.output
    (out / "manifest.csv").unlink()
    without = CliRunner().invoke(cli_eval.main, [str(data), "--masks", str(out)])
    assert "predicted Jaccard: not available" in without.stdout


def _onnx_metadata(path: Path) -> str:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return str(session.get_modelmeta().custom_metadata_map["dermseg.metadata"])
