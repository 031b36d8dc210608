"""Memory stays flat however many images a folder holds (bounded queues in the pipeline)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dermseg_deploy.samples import sample_image_paths

ROOT = Path(__file__).resolve().parents[1]
MEASURE = """
import resource, sys
from dermseg_deploy.cli.run import main
try:
    main(sys.argv[1:])
except SystemExit as exit:
    assert exit.code == 0, exit.code
print("peak_rss_kib", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_rss_kib(model: Path, folder: Path, out: Path) -> int:
    result = subprocess.run(
        [sys.executable, "-c", MEASURE, "--engine", str(model), str(folder), "-o", str(out), "--device", "cpu", "-q",
         "--batch-size", "4"],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return int(result.stdout.split("peak_rss_kib")[-1].split()[0])


def linked_copies(folder: Path, count: int) -> Path:
    folder.mkdir()
    samples = sample_image_paths()
    for index in range(count):
        (folder / f"img{index:05d}.jpg").symlink_to(samples[index % len(samples)])
    return folder


@pytest.mark.slow
def test_peak_rss_over_1000_images_stays_within_1_2x_of_100(onnx_path: Path, tmp_path: Path) -> None:
    small = peak_rss_kib(onnx_path, linked_copies(tmp_path / "in100", 100), tmp_path / "out100")
    large = peak_rss_kib(onnx_path, linked_copies(tmp_path / "in1000", 1000), tmp_path / "out1000")
    assert len(list((tmp_path / "out1000").glob("*_segmentation.png"))) == 1000
    assert large <= 1.2 * small, f"peak RSS {large} KiB over 1000 images vs {small} KiB over 100"
