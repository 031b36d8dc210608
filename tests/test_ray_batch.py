"""`dermseg-run --ray` on a local Ray cluster: the masks of a local run, failed rows for bad files, resumable."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from PIL import Image

from dermseg_deploy.cli import run as cli_run
from dermseg_deploy.files.manifest import read_manifest
from dermseg_deploy.samples import sample_image_paths

from .conftest import ISIC2017_FULLRES, ROOT, require_shared

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def _linked_samples(folder: Path, count: int) -> Path:
    """`count` symlinks to the shipped samples, in turn."""
    folder.mkdir()
    samples = sample_image_paths()
    for index in range(count):
        (folder / f"img{index:02d}.jpg").symlink_to(samples[index % len(samples)])
    return folder


def _wait_for_masks(out: Path, count: int, driver: subprocess.Popen[Any]) -> None:
    """Until `count` masks are written, the driver ends, or two minutes pass."""
    deadline = time.monotonic() + 120
    while len(list(out.glob("*_segmentation.png"))) < count and time.monotonic() < deadline and driver.poll() is None:
        time.sleep(0.05)


def _masks(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*_segmentation.png"))}


@pytest.fixture(scope="module")
def twelve_inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight full-resolution ISIC 2017 JPEGs, an EXIF-rotated and a grey PNG copy, a truncated JPEG, a text file."""
    source = require_shared(ISIC2017_FULLRES) / "ISIC-2017_Validation_Data"
    folder = tmp_path_factory.mktemp("twelve")
    images = sorted(source.glob("*.jpg"))[:8]
    for path in images:
        shutil.copy(path, folder / path.name)
    with Image.open(images[0]) as image:
        small = image.reduce(4)
        exif = small.getexif()
        exif[0x0112] = 8
        (folder / "nested").mkdir()
        small.save(folder / "nested" / "rotated.jpg", exif=exif.tobytes())
        small.convert("L").save(folder / "grey.png")
    (folder / "truncated.jpg").write_bytes(images[1].read_bytes()[:5000])
    (folder / "notes.jpg").write_text("not an image\n")
    return folder


def test_ray_writes_the_masks_of_a_local_run_and_a_bad_file_is_one_failed_row(
    ray_session: Any, twelve_inputs: Path, onnx_path: Path, tmp_path: Path
) -> None:
    local, on_ray = tmp_path / "local", tmp_path / "ray"
    common = ["--engine", str(onnx_path), str(twelve_inputs), "-q", "--batch-size", "2"]
    first = CliRunner().invoke(cli_run.main, [*common, "-o", str(local), "--device", "cpu"])
    second = CliRunner().invoke(cli_run.main, [*common, "-o", str(on_ray), "--ray", "--ray-actors", "2", "--threads", "1"])
    assert first.exit_code == second.exit_code == 1, second.output
    assert "x 2 Ray actor(s) on cpu" in second.stderr
    assert _masks(on_ray) == _masks(local) and len(_masks(local)) == 10
    rows = {Path(r.file).name: r for r in read_manifest(on_ray / "manifest.csv")}
    assert len(rows) == 12
    assert {name for name, r in rows.items() if r.status == "failed"} == {"truncated.jpg", "notes.jpg"}
    assert "cannot be decoded" in rows["truncated.jpg"].error and "not an image" in rows["notes.jpg"].error
    errors = [sorted(line for line in run.stderr.splitlines() if line.startswith("error:")) for run in (first, second)]
    assert errors[0] == errors[1] and len(errors[0]) == 2  # the same lines (on Ray, in the order rows arrive)
    again = CliRunner().invoke(cli_run.main, [*common, "-o", str(on_ray), "--ray"])
    assert again.exit_code == 1 and "0 segmented, 10 skipped" in again.stderr


def test_a_killed_driver_then_a_rerun_finishes_with_the_same_masks(
    ray_session: Any, checkpoint_path: Path, tmp_path: Path
) -> None:
    inputs = _linked_samples(tmp_path / "in", 48)
    out, reference = tmp_path / "out", tmp_path / "reference"
    model = ["--engine", str(checkpoint_path), "--size", "128", "--batch-size", "1"]
    address = ray_session.get_runtime_context().gcs_address
    driver = subprocess.Popen(
        [sys.executable, "-m", "dermseg_deploy.cli.run", *model, str(inputs), "-o", str(out), "-q", "--ray",
         "--ray-address", address, "--ray-actors", "1", "--threads", "1"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    _wait_for_masks(out, 3, driver)
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    written = list(out.glob("*_segmentation.png"))
    assert 0 < len(written) < 48, driver.stdout.read().decode()[-2000:] if driver.stdout else ""
    for mask in written:  # whole masks or none
        with Image.open(mask) as image:
            image.load()
    rerun = CliRunner().invoke(cli_run.main, [*model, str(inputs), "-o", str(out), "-q", "--ray"])
    assert rerun.exit_code == 0, rerun.output
    assert f"{48 - len(written)} segmented, {len(written)} skipped" in rerun.stderr
    assert CliRunner().invoke(cli_run.main, [*model, str(inputs), "-o", str(reference), "-q", "--device", "cpu"]).exit_code == 0
    assert _masks(out) == _masks(reference)


def test_sigterm_to_the_driver_writes_the_manifest_and_exits_143(
    ray_session: Any, checkpoint_path: Path, tmp_path: Path
) -> None:
    inputs = _linked_samples(tmp_path / "in", 48)
    out = tmp_path / "out"
    address = ray_session.get_runtime_context().gcs_address
    driver = subprocess.Popen(
        [sys.executable, "-m", "dermseg_deploy.cli.run", "--engine", str(checkpoint_path), "--size", "128",
         "--batch-size", "1", str(inputs), "-o", str(out), "-q", "--ray", "--ray-address", address, "--ray-actors", "1",
         "--threads", "1"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    _wait_for_masks(out, 3, driver)
    driver.send_signal(signal.SIGTERM)  # what docker stop and Kubernetes send
    output, _ = driver.communicate(timeout=120)
    assert driver.returncode == 143, output[-2000:]
    assert "SIGTERM: stopping after the current batch" in output
    rows = read_manifest(out / "manifest.csv")
    assert 0 < len(rows) < 48 and all(row.status == "ok" for row in rows)


def test_ray_actors_apply_tta_and_post_processing_as_a_local_run(ray_session: Any, onnx_path: Path,
                                                                  tmp_path: Path) -> None:
    inputs = _linked_samples(tmp_path / "in", 4)
    flags = ["--engine", str(onnx_path), str(inputs), "-q", "--tta", "dihedral", "--postprocess", "largest,fill-holes"]
    local = CliRunner().invoke(cli_run.main, [*flags, "-o", str(tmp_path / "local"), "--device", "cpu"])
    on_ray = CliRunner().invoke(cli_run.main, [*flags, "-o", str(tmp_path / "ray"), "--ray", "--ray-actors", "1",
                                               "--threads", "1"])
    plain = CliRunner().invoke(cli_run.main, [*flags[:4], "-o", str(tmp_path / "plain"), "--device", "cpu"])
    assert local.exit_code == on_ray.exit_code == plain.exit_code == 0, on_ray.output
    assert "masks: tta dihedral, postprocess largest+fill-holes" in on_ray.stderr
    assert _masks(tmp_path / "ray") == _masks(tmp_path / "local") != _masks(tmp_path / "plain")
