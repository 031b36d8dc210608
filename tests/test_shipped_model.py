"""The model shipped inside the package: checked against its SHA-256 before use, said when used, and what every
command and the Python API run when no model file is given."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from dermseg_deploy import Segmenter
from dermseg_deploy.backends.onnxruntime_backend import OnnxRuntimeBackend
from dermseg_deploy.cli import eval as eval_cli
from dermseg_deploy.cli import run as cli_run
from dermseg_deploy.core.decode import decode_image
from dermseg_deploy.core.preprocess import preprocess
from dermseg_deploy.errors import ModelFileError
from dermseg_deploy.model import shipped
from dermseg_deploy.samples import SAMPLES_DIR, sample_image_paths

from .helpers import output_scale, read_png

NOTICE = "no --engine given: using the model shipped with dermseg"


def test_the_shipped_model_matches_its_manifest_and_card() -> None:
    model = shipped.verified_shipped_model()
    assert model.path.suffix == ".onnx" and model.sha256 in model.card.read_text()
    assert "Predicted Jaccard" in model.card.read_text()
    assert "CC BY-NC 4.0" in (model.path.parent / "LICENSE").read_text() and "CC BY-NC 4.0" in model.licence
    with OnnxRuntimeBackend(model.path) as backend:  # ONNX Runtime alone: the runtime install runs it
        assert backend.arithmetic == "int8" and backend.name == "onnxruntime-int8-cpu"
        calibration = backend.metadata.quality  # its predicted Jaccard is calibrated for the default settings
        assert calibration is not None and calibration.fitted_on.matches("none", "none", backend.metadata.threshold)


def test_a_damaged_or_missing_shipped_model_is_refused_in_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "models"
    shutil.copytree(shipped.SHIPPED_DIR, folder)
    model = shipped.shipped_model(folder)
    data = bytearray(model.path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="SHA-256 differs from the one in manifest.json"):
        shipped.verified_shipped_model(folder)
    model.path.unlink()
    with pytest.raises(ModelFileError, match="the shipped model is missing"):
        shipped.verified_shipped_model(folder)
    (folder / shipped.MANIFEST_NAME).write_text("{}")
    with pytest.raises(ModelFileError, match="manifest is missing or unreadable"):
        shipped.shipped_model(folder)


@pytest.mark.slow
def test_without_a_model_file_run_eval_and_the_api_use_the_shipped_model(tmp_path: Path) -> None:
    masks = tmp_path / "masks"
    run = CliRunner().invoke(cli_run.main, [str(SAMPLES_DIR / "images"), "-o", str(masks), "--device", "cpu", "-q"])
    assert run.exit_code == 0, run.output
    assert NOTICE in run.stderr and "CC BY-NC 4.0" in run.stderr and "onnxruntime-int8-cpu" in run.stderr
    assert "no lesion found" not in run.stderr  # a lesion in every sample
    scored = CliRunner().invoke(eval_cli.main, [str(SAMPLES_DIR), "--device", "cpu"])
    assert scored.exit_code == 0 and NOTICE in scored.stderr
    with pytest.warns(UserWarning, match=NOTICE):
        segmenter = Segmenter.open(device="cpu")
    with segmenter:
        image = sample_image_paths()[0]
        assert np.array_equal(segmenter.segment(image), read_png(masks / f"{image.stem}_segmentation.png"))


def test_the_runtime_computes_the_int8_products_exactly_on_every_x86_cpu() -> None:
    """ONNX Runtime's fast U8S8 kernels saturate on x86 CPUs without VNNI (an AMD Zen 3: logits off by up to 11 steps
    of the output's scale); the runtime asks for the exact products, which ONNX Runtime computes with its graph
    optimizations off (the QDQ pairs in floating point). A VNNI CPU passes either way."""
    import onnxruntime

    model = shipped.verified_shipped_model()
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    exact = onnxruntime.InferenceSession(str(model.path), options, providers=["CPUExecutionProvider"])
    step = output_scale(model.path)
    with OnnxRuntimeBackend(model.path, "cpu") as backend:
        batch = np.stack([preprocess(decode_image(path.read_bytes(), path), backend.metadata)
                          for path in sample_image_paths()])
        errors = np.abs(np.asarray(backend.infer(batch)) - exact.run(None, {exact.get_inputs()[0].name: batch})[0])
    assert errors.max() <= step * 1.01, (errors.max(), step)  # rounding may differ by one step, never more


def test_a_file_whose_products_cannot_be_made_exact_runs_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """ONNX Runtime's rewrite for exact products fails on some INT8 files (an initializer it would add already
    exists); such a file still runs, with a warning that names it, rather than not at all."""
    import onnxruntime

    real = onnxruntime.InferenceSession
    fail = onnxruntime.capi.onnxruntime_pybind11_state.Fail

    def refuse_exact(path: str, sess_options: Any = None, providers: Any = None) -> Any:
        try:
            exact = sess_options.get_session_config_entry("session.x64quantprecision") == "1"
        except RuntimeError:  # not set
            exact = False
        if exact:
            raise fail("AddInitializedOrtValue Attempt to replace the existing tensor")
        return real(path, sess_options=sess_options, providers=providers)

    monkeypatch.setattr(onnxruntime, "InferenceSession", refuse_exact)
    model = shipped.verified_shipped_model()
    with pytest.warns(UserWarning, match="cannot compute this file's INT8 products exactly .*replace the existing tensor"):
        with OnnxRuntimeBackend(model.path, "cpu") as backend:
            assert backend.arithmetic == "int8"
