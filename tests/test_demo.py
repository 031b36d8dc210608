"""The README's first command: the demo script runs its steps, shows what it is doing, and ends saying where
the results are and what to try next."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dermseg_deploy.files.manifest import read_manifest

from .helpers import run_script

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_demo_runs_its_steps_with_progress_and_says_where_the_results_are(tmp_path: Path) -> None:
    env = {**os.environ, "DERMSEG_DEMO_DIR": str(tmp_path)}
    completed = run_script(["bash", "scripts/demo.sh"], ROOT, env, timeout=600)
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output[-3000:]
    for step in ("demo 1/3: training", "demo 2/3: exporting", "demo 3/3: segmenting"):
        assert step in output
    assert "stage 1 at 96 px" in output and ("step/s" in output or "s/step" in output)  # training progress
    assert "ONNX (FP32): check passed in" in output and "MB)" in output
    assert "not built: fp16 (--formats onnx); build it with dermseg-export" in output
    assert "8 segmented" in output and "per image: read" in output and "img/s" in output
    assert "demo done in" in output and "overlays:" in output and "next:" in output
    masks = tmp_path / "demo" / "masks"
    assert len(list(masks.glob("*_segmentation.png"))) == 8 and len(list(masks.glob("*_overlay.jpg"))) == 8
    assert len(read_manifest(masks / "manifest.csv")) == 8
    assert (tmp_path / "engines" / "demo.onnx").is_file() and not (tmp_path / "engines" / "demo.fp16.onnx").exists()
