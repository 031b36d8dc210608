"""`--tta` and `--postprocess` on every command that makes masks: the same masks as the Python API."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from dermseg_deploy.cli import bench as cli_bench
from dermseg_deploy.cli import eval as eval_cli
from dermseg_deploy.cli import run as cli_run
from dermseg_deploy.cli import serve as cli_serve
from dermseg_deploy.core.mask_options import MaskOptions
from dermseg_deploy.samples import SAMPLES_DIR, sample_image_paths
from dermseg_deploy.scale.segmenter_spec import SegmenterSpec
from dermseg_deploy.segment.segmenter import Segmenter

from .helpers import read_png, run_gpu_script_dry

FLAGS = ["--tta", "flips", "--postprocess", "fill-holes,largest"]


def _masks(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: read_png(p) for p in sorted(folder.glob("*_segmentation.png"))}


@pytest.fixture(scope="module")
def run_masks(tmp_path_factory: pytest.TempPathFactory, onnx_path: Path) -> dict[str, Path]:
    """dermseg-run's masks of the samples, plain and with FLAGS."""
    folders = {}
    for name, flags in (("plain", []), ("flags", FLAGS)):
        out = tmp_path_factory.mktemp(name)
        result = CliRunner().invoke(cli_run.main, ["--engine", str(onnx_path), str(SAMPLES_DIR / "images"), "-o",
                                                   str(out), "-q", "--device", "cpu", *flags])
        assert result.exit_code == 0, result.output
        if flags:
            assert "masks: tta flips, postprocess largest+fill-holes (4 inferences per image); post-processing with " \
                   "scipy.ndimage on the CPU" in result.stderr
        folders[name] = out
    return folders


def test_run_and_the_api_give_the_same_masks_and_the_flags_change_them(run_masks: dict[str, Path],
                                                                       onnx_path: Path) -> None:
    with Segmenter.open(onnx_path, "cpu", tta="flips", postprocess="largest,fill-holes") as segmenter:
        api = {f"{p.stem}_segmentation.png": segmenter.segment_file(p) for p in sample_image_paths()}
    from_run = _masks(run_masks["flags"])
    assert from_run.keys() == api.keys() and len(api) == 8
    assert all(np.array_equal(from_run[name], api[name]) for name in api)
    plain = _masks(run_masks["plain"])
    assert any(not np.array_equal(plain[name], api[name]) for name in api)


def test_eval_scores_and_saves_the_masks_dermseg_run_writes(run_masks: dict[str, Path], onnx_path: Path,
                                                             tmp_path: Path) -> None:
    saved = tmp_path / "saved"
    json_path = tmp_path / "scores.json"
    result = CliRunner().invoke(eval_cli.main, [str(SAMPLES_DIR), "--engine", str(onnx_path), "--device", "cpu",
                                                "--save-masks", str(saved), "--json", str(json_path), *FLAGS])
    assert result.exit_code == 0, result.output
    assert "masks tta flips, postprocess largest+fill-holes" in result.stdout
    saved_masks, run = _masks(saved), _masks(run_masks["flags"])
    assert saved_masks.keys() == run.keys() and all(np.array_equal(saved_masks[k], run[k]) for k in run)
    from_masks = tmp_path / "from_masks.json"
    CliRunner().invoke(eval_cli.main, [str(SAMPLES_DIR), "--masks", str(run_masks["flags"]), "--json", str(from_masks)])
    assert json.loads(json_path.read_text())["jaccard"] == json.loads(from_masks.read_text())["jaccard"]
    refused = CliRunner().invoke(eval_cli.main, [str(SAMPLES_DIR), "--masks", str(saved), "--tta", "flips"])
    assert refused.exit_code == 2 and "--tta and --postprocess go with --engine" in refused.stderr


def test_bench_measures_each_setting_as_its_own_row(onnx_path: Path, tmp_path: Path) -> None:
    json_path = tmp_path / "bench.json"
    result = CliRunner().invoke(cli_bench.main, [
        "--engine", str(onnx_path), "--device", "cpu", "--batch-sizes", "2", "--warmup", "0", "--min-iterations", "1",
        "--min-seconds", "0", "--tta", "none", "--tta", "dihedral", "--postprocess", "none", "--postprocess", "largest",
        "--json", str(json_path), "-q"])
    assert result.exit_code == 0, result.output
    rows = json.loads(json_path.read_text())["results"]
    assert [(r["masks"], r["views"]) for r in rows] == [
        ("plain", 1), ("postprocess largest", 1), ("tta dihedral", 8), ("tta dihedral, postprocess largest", 8)]
    assert rows[0]["mean_iou_vs_reference"] == 1.0 and all(r["mean_iou_vs_reference"] is not None for r in rows)
    assert "[tta dihedral, postprocess largest]" in result.stdout


def test_serve_and_ray_workers_open_the_model_with_the_mask_options(onnx_path: Path) -> None:
    spec = SegmenterSpec(str(onnx_path), "cpu", mask_options=MaskOptions.parse("dihedral", "largest"))
    with spec.on("cpu", 1).open() as segmenter:
        assert segmenter.mask_options == MaskOptions("dihedral", ("largest",))
        assert "masks='tta dihedral, postprocess largest'" in repr(segmenter)
    names = {p.name for p in cli_serve.main.params}
    assert {"tta", "postprocess"} <= names


@pytest.mark.parametrize("args, message", [
    (["--postprocess", "biggest"], "postprocess = 'biggest'"),
    (["--tta", "rotations"], "'rotations' is not one of"),
])
def test_unknown_settings_are_usage_errors(onnx_path: Path, args: list[str], message: str) -> None:
    for command, extra in ((cli_run.main, ["--engine", str(onnx_path), str(SAMPLES_DIR / "images")]),
                           (eval_cli.main, [str(SAMPLES_DIR), "--engine", str(onnx_path)]),
                           (cli_bench.main, ["--engine", str(onnx_path)])):
        result = CliRunner().invoke(command, [*extra, *args])
        assert result.exit_code == 2 and message in result.output, (command.name, result.output)


@pytest.mark.slow
def test_gpu_recipe_dry_run_trains_scores_each_setting_and_benches_it(tmp_path: Path) -> None:
    run_gpu_script_dry("gpu_recipe.sh", SAMPLES_DIR / "images", tmp_path)
    assert "gpu_recipe status: 0" in (tmp_path / "recipe.txt").read_text()
    scores = {p.name: json.loads(p.read_text()) for p in tmp_path.glob("eval-*.json")}
    assert set(scores) == {"eval-none-none.json", "eval-flips-none.json", "eval-dihedral-largest+fill-holes.json"}
    assert all(s["images"] == 2 and not s["failed"] for s in scores.values())
    source = scores["eval-dihedral-largest+fill-holes.json"]["source"]
    assert "masks tta dihedral, postprocess largest+fill-holes" in source and ", 64 px," in source  # as trained
    rows = json.loads((tmp_path / "bench-tta.json").read_text())["results"]
    assert [r["views"] for r in rows] == [1, 1, 4, 4, 8, 8]
