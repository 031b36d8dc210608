"""The runtime install on its own (`pip install dermseg`, no extras): no torch, small, and its commands give the
full install's masks; what needs an extra says which, in one line. Driven as subprocesses in a second venv
(scripts/runtime_venv.sh; DERMSEG_RUNTIME_VENV keeps it between runs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from dermseg_deploy.cli import run as cli_run
from dermseg_deploy.samples import SAMPLES_DIR

from .conftest import ISIC2017_FULLRES, require_shared

ROOT = Path(__file__).resolve().parents[1]
RUNTIME_LIMIT_MB = 500
EXTRAS_MODULES = ("torch", "torchvision", "onnx", "onnxscript", "modelopt", "openvino", "nncf", "ray", "tritonclient",
                  "matplotlib")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runtime_install() -> tuple[Path, Path]:
    """The runtime venv and the wheel it was installed from, built (or brought up to date) by scripts/runtime_venv.sh
    from this tree, from a wheelhouse alone (--no-index)."""
    env = {**os.environ, "PYTHON": sys.executable}
    completed = subprocess.run(["bash", "scripts/runtime_venv.sh"], cwd=ROOT, env=env, capture_output=True, text=True,
                               timeout=900)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    venv, wheel = (Path(line) for line in completed.stdout.strip().splitlines()[-2:])
    return (venv if venv.is_absolute() else ROOT / venv), wheel


@pytest.fixture(scope="module")
def runtime_venv(runtime_install: tuple[Path, Path]) -> Path:
    return runtime_install[0]


def test_the_wheel_holds_the_model_and_samples_and_nothing_of_the_repository(runtime_install: tuple[Path, Path]) -> None:
    import zipfile

    wheel = runtime_install[1]
    names = zipfile.ZipFile(wheel).namelist()
    for required in ("dermseg_deploy/models/manifest.json", "dermseg_deploy/models/MODEL_CARD.md",
                     "dermseg_deploy/models/LICENSE", "dermseg_deploy/samples/README.md"):
        assert required in names, required
    manifest = json.loads(zipfile.ZipFile(wheel).read("dermseg_deploy/models/manifest.json"))
    assert f"dermseg_deploy/models/{manifest['file']}" in names
    assert sum(name.startswith("dermseg_deploy/samples/images/") for name in names) == 8
    assert sum(name.startswith("dermseg_deploy/samples/masks/") for name in names) == 8
    leaked = [n for n in names if n.startswith(("tests/", "benchmarks/", "docs/", "scripts/", "engines/"))]
    assert leaked == [] and not any("results" in n.split("/") for n in names), leaked
    checked = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", str(wheel)], capture_output=True,
                             text=True, timeout=120)
    assert checked.returncode == 0 and "PASSED" in checked.stdout, checked.stdout + checked.stderr
    assert wheel.stat().st_size < 60e6  # the shipped model (42 MB) and the code


def _run(venv: Path, command: str, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(venv / "bin" / command), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


def _megabytes(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink()) / 1e6


def test_the_runtime_install_has_no_torch_and_stays_small(runtime_venv: Path) -> None:
    code = f"import importlib.util as u; print([m for m in {EXTRAS_MODULES!r} if u.find_spec(m)])"
    found = _run(runtime_venv, "python", "-c", code)
    assert found.returncode == 0 and found.stdout.strip() == "[]", found.stdout + found.stderr
    assert _megabytes(runtime_venv) <= RUNTIME_LIMIT_MB
    for command in ("dermseg-run", "dermseg-eval", "dermseg-bench", "dermseg-serve", "dermseg-train", "dermseg-export"):
        helped = _run(runtime_venv, command, "--help")
        assert helped.returncode == 0 and "Usage:" in helped.stdout, command + helped.stderr


@pytest.mark.shared_data
def test_runtime_dermseg_run_gives_the_full_installs_masks(runtime_venv: Path, onnx_path: Path, tmp_path: Path) -> None:
    images = require_shared(ISIC2017_FULLRES) / "ISIC-2017_Validation_Data"
    alone = _run(runtime_venv, "dermseg-run", "--engine", str(onnx_path), str(images), "-o", str(tmp_path / "runtime"),
                 "-q")
    assert alone.returncode == 0, alone.stderr
    assert "device: auto picked cpu" in alone.stderr
    full = CliRunner().invoke(cli_run.main, ["--engine", str(onnx_path), str(images), "-o", str(tmp_path / "full"), "-q"])
    assert full.exit_code == 0, full.output
    masks = sorted(p.name for p in (tmp_path / "full").glob("*_segmentation.png"))
    assert len(masks) == 24
    assert sorted(p.name for p in (tmp_path / "runtime").glob("*_segmentation.png")) == masks
    for name in masks:
        assert (tmp_path / "runtime" / name).read_bytes() == (tmp_path / "full" / name).read_bytes(), name


def test_runtime_dermseg_run_without_a_model_file_runs_the_shipped_int8_model(runtime_venv: Path,
                                                                             tmp_path: Path) -> None:
    masks = tmp_path / "masks"
    alone = _run(runtime_venv, "dermseg-run", str(SAMPLES_DIR / "images"), "-o", str(masks), "-q", cwd=tmp_path)
    assert alone.returncode == 0, alone.stderr
    assert "no --engine given: using the model shipped with dermseg" in alone.stderr
    assert "onnxruntime-int8-cpu" in alone.stderr and "no lesion found" not in alone.stderr
    assert len(list(masks.glob("*_segmentation.png"))) == 8


def test_runtime_eval_and_bench_run_on_onnx(runtime_venv: Path, onnx_path: Path, tmp_path: Path) -> None:
    scores = _run(runtime_venv, "dermseg-eval", str(SAMPLES_DIR), "--engine", str(onnx_path), "--json",
                  str(tmp_path / "scores.json"), "--postprocess", "largest,fill-holes", "--report", str(tmp_path / "report"))
    assert scores.returncode == 0 and (tmp_path / "scores.json").is_file(), scores.stderr
    page = (tmp_path / "report" / "index.html").read_text()  # the report works without matplotlib, and says so
    assert "The histogram is missing: matplotlib is not installed" in page and len(list((tmp_path / "report" /
                                                                                         "pictures").iterdir())) == 8
    bench = _run(runtime_venv, "dermseg-bench", "--engine", str(onnx_path), "--batch-sizes", "2", "--min-iterations", "2",
                 "--min-seconds", "0", "--warmup", "0", "--json", str(tmp_path / "bench.json"), "--plot",
                 str(tmp_path / "bench.png"), "-q")
    assert bench.returncode == 0, bench.stderr
    assert "matplotlib is not installed (pip install 'dermseg[plot]'); the plot is skipped" in bench.stderr
    assert (tmp_path / "bench.json").is_file() and not (tmp_path / "bench.png").exists()


@pytest.mark.parametrize("command,args,extra", [
    ("dermseg-train", ["--data", "DATA", "--out", "OUT/model.pt"], "train"),
    ("dermseg-export", ["MODEL.pt"], "export"),
    ("dermseg-run", ["--engine", "MODEL.pt", "IMAGES", "-q"], "train"),
    ("dermseg-run", ["--engine", "MODEL.onnx", "IMAGES", "--device", "cuda", "-q"], "train"),
    ("dermseg-run", ["--engine", "MODEL.onnx", "IMAGES", "--ray", "-q"], "ray"),
    ("dermseg-serve", ["--engine", "MODEL.onnx"], "ray"),
    ("dermseg-eval", [str(SAMPLES_DIR), "--engine", "MODEL.pt"], "train"),
])
def test_what_needs_an_extra_says_which_in_one_line(runtime_venv: Path, onnx_path: Path, checkpoint_path: Path,
                                                    tmp_path: Path, command: str, args: list[str], extra: str) -> None:
    values = {"DATA": str(SAMPLES_DIR), "OUT": str(tmp_path), "MODEL.pt": str(checkpoint_path),
              "MODEL.onnx": str(onnx_path), "IMAGES": str(SAMPLES_DIR / "images")}
    result = _run(runtime_venv, command, *[values.get(arg, arg.replace("OUT", str(tmp_path))) for arg in args],
                  cwd=tmp_path)
    assert result.returncode == 4, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert f"pip install 'dermseg[{extra}]'" in lines[0] and "Traceback" not in result.stderr
