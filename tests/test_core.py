"""One core: every entry point on the CPU writes byte-identical masks for the same real images; the manifest."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from dermseg_deploy import Segmenter
from dermseg_deploy.backends import open_backend
from dermseg_deploy.bench.measure import BenchSettings, measure_stages
from dermseg_deploy.cli import eval as eval_cli
from dermseg_deploy.cli import run as cli_run
from dermseg_deploy.core.decode_policy import DecodePolicy
from dermseg_deploy.errors import UserError
from dermseg_deploy.files.manifest import COLUMNS, ManifestRow, read_manifest, write_manifest

from .conftest import ISIC2017_FULLRES, require_shared

SIZE_PX = 256  # small enough that libjpeg's reduced DCT scale applies to every full-resolution image


@pytest.fixture(scope="module")
def fullres_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three full-resolution ISIC 2017 images with their masks, plus one of them re-encoded with EXIF orientation 6
    (its mask turned the same way), laid out as images/ + masks/."""
    source = require_shared(ISIC2017_FULLRES)
    images = sorted((source / "ISIC-2017_Validation_Data").glob("*.jpg"))
    largest = max(images, key=lambda p: p.stat().st_size)
    picked = [largest, *[p for p in (images[0], images[1]) if p != largest][:2]]
    root = tmp_path_factory.mktemp("fullres")
    (root / "images").mkdir()
    (root / "masks").mkdir()
    for path in picked:
        shutil.copy(path, root / "images" / path.name)
        shutil.copy(source / "ISIC-2017_Validation_Part1_GroundTruth" / f"{path.stem}_segmentation.png", root / "masks")
    with Image.open(picked[0]) as image:
        exif = image.getexif()
        exif[0x0112] = 6
        image.save(root / "images" / "ISIC_rotated.jpg", quality=92, exif=exif.tobytes())
    with Image.open(root / "masks" / f"{picked[0].stem}_segmentation.png") as mask:
        mask.transpose(Image.Transpose.ROTATE_270).save(root / "masks" / "ISIC_rotated_segmentation.png")
    return root


def _masks(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*_segmentation.png"))}


@pytest.mark.slow
@pytest.mark.shared_data
def test_every_cpu_entry_point_writes_the_same_masks(fullres_data: Path, checkpoint_path: Path, tmp_path: Path) -> None:
    images = sorted((fullres_data / "images").glob("*.jpg"))
    policy = DecodePolicy(SIZE_PX)
    for path in images:  # the reduced DCT scale really applies
        decoded = policy.decode_on_host(path.read_bytes(), path)
        assert decoded.pixels.shape[-1] < decoded.size_hw[1], path.name
    model, size = str(checkpoint_path), ["--size", str(SIZE_PX)]
    outputs: dict[str, Path] = {}
    for name, extra in (("run", []), ("run-overlay", ["--overlay"])):
        outputs[name] = tmp_path / name
        result = CliRunner().invoke(cli_run.main, ["--engine", model, str(fullres_data / "images"), "-o",
                                                   str(outputs[name]), "-q", "--device", "cpu", *size, *extra])
        assert result.exit_code == 0, result.output
    assert len(list(outputs["run-overlay"].glob("*_overlay.jpg"))) == 4

    outputs["segment_files"] = tmp_path / "segment_files"
    with Segmenter.open(checkpoint_path, "cpu", SIZE_PX) as segmenter:
        results = segmenter.segment_files(images, outputs["segment_files"])
        assert all(r.ok for r in results)
        in_memory = {f"{Path(r.source).stem}_segmentation.png": segmenter.segment(r.source) for r in results}

    outputs["eval"] = tmp_path / "eval"
    result = CliRunner().invoke(eval_cli.main, [str(fullres_data), "--engine", model, *size, "--device", "cpu",
                                                "--save-masks", str(outputs["eval"])])
    assert result.exit_code == 0, result.output
    assert {r.status for r in read_manifest(outputs["eval"] / "manifest.csv")} == {"ok"}

    outputs["bench"] = tmp_path / "bench"
    outputs["bench"].mkdir()
    with Segmenter(open_backend(checkpoint_path, size_px=SIZE_PX)) as segmenter:
        measure_stages(segmenter, images, BenchSettings(len(images), 0, 1, 0.0), outputs["bench"])

    reference = _masks(outputs["run"])
    assert len(reference) == 4
    for name, folder in outputs.items():
        assert _masks(folder) == reference, name
    for mask_name, array in in_memory.items():
        with Image.open(outputs["run"] / mask_name) as written:
            assert written.tobytes() == array.tobytes() and written.size == array.shape[::-1], mask_name
    with Image.open(outputs["run"] / "ISIC_rotated_segmentation.png") as mask, \
            Image.open(fullres_data / "images" / "ISIC_rotated.jpg") as raw:
        assert mask.size == (raw.size[1], raw.size[0])


def test_the_manifest_has_fixed_columns_and_round_trips(tmp_path: Path) -> None:
    rows = [ManifestRow("a.jpg", "ok", "out/a_segmentation.png", 0.25, 0.5, note="decoded on the CPU"),
            ManifestRow("b.jpg", "failed", error="is empty (0 bytes)"), ManifestRow("c.jpg", "skipped", "out/c.png")]
    path = write_manifest(tmp_path / "manifest.csv", rows)
    with path.open() as handle:
        assert tuple(next(csv.reader(handle))) == COLUMNS == (
            "file", "status", "mask_path", "lesion_area_fraction", "seconds", "error", "note", "error_kind",
            "predicted_jaccard", "review")
    assert read_manifest(path) == rows
    first_version = tmp_path / "first.csv"  # a manifest of the first version, before error_kind: read, kinds empty
    first_version.write_text("file,status,mask_path,lesion_area_fraction,seconds,error,note\nb.jpg,failed,,,0,bad,\n")
    assert read_manifest(first_version) == [ManifestRow("b.jpg", "failed", error="bad")]
    assert read_manifest(write_manifest(tmp_path / "report.csv", rows, failures_only=True)) == [rows[1]]
    assert ManifestRow.from_dict(rows[0].to_dict()) == rows[0]
    with pytest.raises(ValueError, match="not one of ok, skipped, failed"):
        ManifestRow("a.jpg", "done")
    (tmp_path / "other.csv").write_text("name,value\nx,1\n")
    with pytest.raises(UserError, match="not a dermseg manifest"):
        read_manifest(tmp_path / "other.csv")
