"""The Python API and the commands' host path with torch made unimportable, in the full install: nothing on the
CPU path with an ONNX model reaches for torch (the runtime install has none; tests/test_runtime_install.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dermseg_deploy.samples import SAMPLES_DIR

ROOT = Path(__file__).resolve().parents[1]
BLOCK_TORCH = """
import sys
for name in ("torch", "torchvision"):
    sys.modules[name] = None  # as if not installed: `import torch` raises, find_spec says absent
"""
API_SCRIPT = BLOCK_TORCH + """
import json
from pathlib import Path

import numpy as np
from PIL import Image

from dermseg_deploy import Segmenter
from dermseg_deploy.evaluation.pairs import discover_pairs
from dermseg_deploy.evaluation.scoring import evaluate_segmenter, summarize

onnx, samples, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
paths = sorted((samples / "images").glob("*.jpg"))
with Segmenter.open(onnx, tta="flips", postprocess="largest,fill-holes") as segmenter:
    one = segmenter.segment(paths[0])
    from_array = segmenter.segment(np.asarray(Image.open(paths[0]).convert("RGB")))
    results = segmenter.segment_files(paths, out, overlay=True)
    scores = summarize(evaluate_segmenter(segmenter, discover_pairs(samples), batch_size=4))
print(json.dumps({
    "device": str(segmenter.backend.device),
    "shape": list(one.shape), "values": sorted(np.unique(one).tolist()),
    "same_from_array": bool(np.array_equal(one, from_array)),
    "statuses": sorted({r.status for r in results}), "overlays": len(list(out.glob("*_overlay.jpg"))),
    "jaccard": scores["all"]["jaccard"],
    "torch_loaded": [name for name, module in sys.modules.items() if name.startswith("torch") and module is not None],
}))
"""


def _python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_the_api_runs_without_torch(onnx_path: Path, tmp_path: Path) -> None:
    completed = _python(API_SCRIPT, str(onnx_path), str(SAMPLES_DIR), str(tmp_path / "masks"))
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert report["device"] == "cpu" and report["torch_loaded"] == []
    assert report["values"] in ([0, 255], [0], [255]) and report["same_from_array"]
    assert report["statuses"] == ["ok"] and report["overlays"] == 8
    assert 0.0 <= report["jaccard"] <= 1.0


@pytest.mark.parametrize("module,args", [
    ("dermseg_deploy.cli.run", ["--engine", "{onnx}", "{images}", "-o", "{out}", "-q", "--overlay"]),
    ("dermseg_deploy.cli.eval", ["{samples}", "--engine", "{onnx}"]),
])
def test_commands_on_onnx_run_without_torch(onnx_path: Path, tmp_path: Path, module: str, args: list[str]) -> None:
    values = {"onnx": onnx_path, "images": SAMPLES_DIR / "images", "out": tmp_path / "out", "samples": SAMPLES_DIR}
    code = BLOCK_TORCH + f"from {module} import main\nmain()\n"
    completed = _python(code, *[arg.format(**values) for arg in args])
    assert completed.returncode == 0, completed.stderr


def test_a_pt_model_without_torch_names_the_extra(checkpoint_path: Path) -> None:
    code = BLOCK_TORCH + "from dermseg_deploy import Segmenter\nSegmenter.open(sys.argv[1])\n"
    completed = _python(code, str(checkpoint_path))
    assert completed.returncode == 1
    assert "BackendUnavailableError" in completed.stderr and "pip install 'dermseg[train]'" in completed.stderr
