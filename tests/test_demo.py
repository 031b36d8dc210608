"""The README's first command: the demo script runs its steps, shows what it is doing, and ends saying where
the results are and what to try next."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from dermseg_deploy.files.manifest import read_manifest

from .helpers import run_script

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_demo_segments_the_samples_with_the_shipped_model_and_scores_them(tmp_path: Path) -> None:
    env = {**os.environ, "DERMSEG_DEMO_DIR": str(tmp_path)}
    completed = run_script(["bash", "scripts/demo.sh"], ROOT, env, timeout=600)
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output[-3000:]
    for step in ("demo 1/2: segmenting", "demo 2/2: scoring"):
        assert step in output
    assert "no --engine given: using the model shipped with dermseg" in output and "CC BY-NC 4.0" in output
    assert "8 segmented" in output and "onnxruntime-int8-cpu" in output and "per image: read" in output
    assert "no lesion found" not in output  # a lesion in every sample
    mean = re.search(r"mean Jaccard ([0-9.]+) on the 8 samples \(unseen in training\)", output)
    assert mean is not None and float(mean.group(1)) >= 0.75, output[-2000:]
    assert "demo done in" in output and "overlays:" in output and "next:" in output and "train a model:" in output
    masks = tmp_path / "demo" / "masks"
    assert len(list(masks.glob("*_segmentation.png"))) == 8 and len(list(masks.glob("*_overlay.jpg"))) == 8
    assert len(read_manifest(masks / "manifest.csv")) == 8
