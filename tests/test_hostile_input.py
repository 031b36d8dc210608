"""The hostile matrix, second pass: formats the decoder allow-list refuses (and no decoder starts a process), one bad
image or mask that never harms the others, untrusted JSON of every hostile shape, exit codes by cause, the shipped
manifest's file, and text from files printed safely."""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner, Result
from PIL import Image

from dermseg_deploy.cli import eval as cli_eval
from dermseg_deploy.cli import run as cli_run
from dermseg_deploy.core import stages as core_stages
from dermseg_deploy.core.decode import decode_image
from dermseg_deploy.core.image_formats import UNREADABLE
from dermseg_deploy.errors import ImageTooLargeError, InputImageError, ModelFileError
from dermseg_deploy.evaluation.pairs import read_mask
from dermseg_deploy.files.manifest import read_manifest
from dermseg_deploy.files.mask_files import lesion_fraction_of_file
from dermseg_deploy.model import shipped
from dermseg_deploy.samples import SAMPLES_DIR, sample_image_paths
from dermseg_deploy.segment.image_input import as_pixels_or_path
from dermseg_deploy.util.bounded_json import MAX_JSON_BYTES, UntrustedJsonError, loads_bounded, read_bounded_json_file
from dermseg_deploy.util.printable import printable

from .hostile_models import tiny_onnx

ROOT = Path(__file__).resolve().parents[1]
POSTSCRIPT = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 64 64\nnewpath 0 0 moveto 64 64 lineto stroke showpage\n"


def run(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    return CliRunner(env=env).invoke(cli_run.main, [str(a) for a in args])


def _encoded(format_name: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (48, 40), (200, 120, 90)).save(buffer, format=format_name, **options)
    return buffer.getvalue()


@pytest.fixture
def fake_ghostscript(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `gs` first on PATH that records each call in a file (Ghostscript itself may be absent where tests run)."""
    folder, record = tmp_path / "bin", tmp_path / "gs-was-called"
    folder.mkdir()
    script = folder / "gs"
    script.write_text(f"#!/bin/sh\necho \"$@\" >> {record}\nexit 1\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    return record


REFUSED_FORMATS = [("GIF", {}), ("WEBP", {}), ("ICO", {}), ("PCX", {}), ("TGA", {}), ("PPM", {}),
                   ("SGI", {}), ("QOI", {}), ("DDS", {})]


@pytest.mark.parametrize(("format_name", "options"), REFUSED_FORMATS, ids=[f for f, _ in REFUSED_FORMATS])
def test_formats_off_the_allow_list_are_refused_with_the_list(format_name: str, options: dict[str, Any]) -> None:
    data = _encoded(format_name, **options)
    with pytest.raises(InputImageError) as refused:
        decode_image(data, f"disguised.{format_name.lower()}.jpg")
    assert refused.value.reason == UNREADABLE and "(JPEG, PNG, BMP, TIFF)" in UNREADABLE


def test_the_listed_formats_decode_and_a_camera_mpo_is_a_jpeg() -> None:
    for format_name in ("JPEG", "PNG", "BMP", "TIFF"):
        assert decode_image(_encoded(format_name), format_name).shape == (40, 48, 3)
    mpo = io.BytesIO()
    Image.new("RGB", (48, 40)).save(mpo, format="MPO", save_all=True, append_images=[Image.new("RGB", (48, 40))])
    assert decode_image(mpo.getvalue(), "camera.mpo").shape == (40, 48, 3)


def test_no_decoder_starts_ghostscript(tmp_path: Path, fake_ghostscript: Path, onnx_path: Path) -> None:
    control = subprocess.run(  # the negative control: Pillow left to itself hands PostScript to gs
        [sys.executable, "-c", "import io, sys; from PIL import Image; "
                               "Image.open(io.BytesIO(sys.stdin.buffer.read())).load()"],
        input=POSTSCRIPT, capture_output=True, env=os.environ.copy(), timeout=60)
    assert control.returncode != 0 and fake_ghostscript.is_file(), control.stderr[-500:]
    fake_ghostscript.unlink()

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a-postscript.jpg").write_bytes(POSTSCRIPT)
    for index, sample in enumerate(sample_image_paths()[:2]):
        shutil.copy(sample, folder / f"good-{index}.jpg")
    result = run("--engine", onnx_path, folder, "-o", tmp_path / "out", "-q")
    assert result.exit_code == 1, result.output
    assert f"a-postscript.jpg: {UNREADABLE}" in result.stderr and "Traceback" not in result.output
    rows = {Path(row.file).name: row for row in read_manifest(tmp_path / "out" / "manifest.csv")}
    assert [rows[f"good-{i}.jpg"].status for i in range(2)] == ["ok", "ok"] and rows["a-postscript.jpg"].status == "failed"

    (tmp_path / "mask.png").write_bytes(POSTSCRIPT)
    with pytest.raises(InputImageError, match="mask is not an image in a format dermseg reads"):
        read_mask(tmp_path / "mask.png")
    assert lesion_fraction_of_file(str(tmp_path / "mask.png")) is None
    (tmp_path / "lazy.eps").write_bytes(POSTSCRIPT)
    with Image.open(tmp_path / "lazy.eps") as lazy, pytest.raises(InputImageError, match="PIL image of format EPS"):
        as_pixels_or_path(lazy)  # refused before exif_transpose could load it
    assert not fake_ghostscript.exists()  # nothing ever ran gs


def _bomb_png(width: int, height: int) -> bytes:
    """A PNG header that claims `width` x `height` pixels, with a few bytes of image data."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _pairs(folder: Path) -> Path:
    shutil.copytree(SAMPLES_DIR / "images", folder / "images")
    shutil.copytree(SAMPLES_DIR / "masks", folder / "masks")
    return folder


def test_one_unreadable_or_bomb_mask_fails_its_pair_and_the_others_are_scored(tmp_path: Path, onnx_path: Path) -> None:
    data = _pairs(tmp_path / "data")
    masks = sorted((data / "masks").iterdir())
    masks[0].write_bytes(b"\x89PNG\r\n\x1a\n not a png at all")
    masks[1].write_bytes(_bomb_png(60000, 60000))
    result = CliRunner().invoke(cli_eval.main, [str(data), "--engine", str(onnx_path), "--device", "cpu",
                                                "--report", str(tmp_path / "report"), "--json", str(tmp_path / "e.json")])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and "DecompressionBomb" not in result.output
    assert "mask is too large to decode safely" in result.stderr  # Pillow's own bomb check, as one line
    assert f"{masks[0].name}: mask cannot be decoded" in result.stderr or "mask is not an image" in result.stderr
    scores = json.loads((tmp_path / "e.json").read_text())
    assert scores["images"] == 8 and len(scores["failed"]) == 2  # the six others scored, the two counted 0
    assert (tmp_path / "report" / "index.html").is_file()


def test_an_unexpected_exception_in_one_image_is_its_internal_failure(tmp_path: Path, onnx_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    images = sample_image_paths()[:4]
    real_preprocess = core_stages.HostStages.preprocess

    def crash_on_third(self: core_stages.HostStages, prepared: core_stages.Prepared) -> None:
        if prepared.item.source == images[2]:
            raise KeyError("a bug on this image")
        real_preprocess(self, prepared)

    monkeypatch.setattr(core_stages.HostStages, "preprocess", crash_on_third)
    result = run("--engine", onnx_path, *images, "-o", tmp_path / "out", "-q", "--batch-size", "4", "--debug")
    assert result.exit_code == 70, result.output
    rows = read_manifest(tmp_path / "out" / "manifest.csv")
    assert [row.status for row in rows] == ["ok", "ok", "failed", "ok"]
    assert rows[2].error_kind == "internal" and rows[2].error == "internal error (KeyError: 'a bug on this image')"
    assert "3 segmented, 0 skipped (mask exists), 1 failed" in result.stderr  # the summary is printed
    assert "Traceback (most recent call last)" in result.stderr and "crash_on_third" in result.stderr  # --debug
    assert "1 image(s) failed on an internal error" in result.stderr
    monkeypatch.setattr(core_stages.HostStages, "preprocess", real_preprocess)

    from dermseg_deploy.segment import pipeline

    real_write = pipeline.write_outputs

    def crash_in_writer(item: Any, mask: np.ndarray, *rest: Any) -> None:
        if item.source == images[1]:
            raise ValueError("the writer's bug")
        real_write(item, mask, *rest)

    monkeypatch.setattr(pipeline, "write_outputs", crash_in_writer)
    result = run("--engine", onnx_path, *images, "-o", tmp_path / "out2", "-q")
    assert result.exit_code == 70 and "Traceback" not in result.stderr, result.output  # no --debug: one line each
    assert [row.error_kind for row in read_manifest(tmp_path / "out2" / "manifest.csv")] == ["", "internal", "", ""]


HOSTILE_JSON = [
    ("nested 100000 deep", "[" * 100000 + "]" * 100000, "nested 100000 levels deep, over the limit of 32"),
    ("objects nested 40 deep", '{"a":' * 40 + "1" + "}" * 40, "nested 40 levels deep"),
    ("an integer of 5000 digits", '{"size_px": ' + "9" * 5000 + "}", "an integer of 5000 digits"),
    ("a negative integer of 21 digits", "[-" + "1" * 21 + "]", "an integer of 21 digits"),
    ("NaN", '{"threshold": NaN}', "NaN is not a JSON number"),
    ("Infinity", "[Infinity]", "Infinity is not a JSON number"),
    ("-Infinity", "[-Infinity]", "-Infinity is not a JSON number"),
    ("1e999", "[1e999]", "is not a finite number"),
    ("a float of 400 characters", "[0." + "1" * 400 + "]", "is not a finite number of at most 40 characters"),
    ("5 MB of JSON", '{"a": "' + "x" * (5 * 2**20) + '"}', f"over the limit of {MAX_JSON_BYTES}"),
    ("brackets inside strings count nothing", '{"a": "' + "[" * 100 + '"}', None),
    ("not JSON", "{size_px: 64", "not valid JSON"),
    ("trailing garbage", '{"a": 1} {"b": 2}', "not valid JSON"),
]


@pytest.mark.parametrize(("case", "text", "expected"), HOSTILE_JSON, ids=[c for c, _, _ in HOSTILE_JSON])
def test_untrusted_json_is_parsed_within_numbered_limits(case: str, text: str, expected: str | None) -> None:
    if expected is None:
        assert loads_bounded(text, "x") == {"a": "[" * 100}
        return
    with pytest.raises(UntrustedJsonError, match=expected.replace("(", r"\(").replace("+", r"\+")):
        loads_bounded(text, "the source")
    with pytest.raises(UntrustedJsonError, match="not UTF-8"):
        loads_bounded(b'{"a": "\xff"}', "bytes")


def test_hostile_json_in_every_file_that_carries_it_is_one_line(tmp_path: Path, onnx_path: Path) -> None:
    deep = "[" * 100000 + "]" * 100000
    model = tiny_onnx(tmp_path / "deep.onnx", metadata=deep)
    result = run("--engine", model, sample_image_paths()[0], "-o", tmp_path / "out", "-q")
    assert result.exit_code == 2 and "nested 100000 levels deep" in result.stderr, result.output
    assert "Traceback" not in result.output and "RecursionError" not in result.output
    huge = tiny_onnx(tmp_path / "digits.onnx", metadata='{"size_px": ' + "9" * 5000 + "}")
    assert "an integer of 5000 digits" in run("--engine", huge, sample_image_paths()[0], "-o", tmp_path / "o2").stderr

    ids = tmp_path / "model.split.json"
    ids.write_text('{"val": ' + deep + "}")
    data = _pairs(tmp_path / "data")
    refused = CliRunner().invoke(cli_eval.main, [str(data), "--engine", str(onnx_path), "--ids", str(ids)])
    assert refused.exit_code == 2 and "nested 100001 levels deep" in refused.stderr, refused.output

    from dermseg_train import cli as train_cli

    config = tmp_path / "config.json"
    config.write_text('{"seed": NaN}')
    trained = CliRunner().invoke(train_cli.main, ["--config", str(config), "--data", str(data), "--out", "m.pt"])
    assert trained.exit_code == 2 and "NaN is not a JSON number" in trained.stderr, trained.output

    for special in ("/dev/zero", str(tmp_path)):
        with pytest.raises(UntrustedJsonError, match="not a regular file|cannot be read"):
            read_bounded_json_file(Path(special))


def test_an_onnx_whose_external_data_onnxruntime_refuses_is_a_bad_model_file(tmp_path: Path) -> None:
    import onnx

    model = onnx.load(str(tiny_onnx(tmp_path / "t.onnx")))
    weight = model.graph.initializer[0]
    weight.data_location = onnx.TensorProto.EXTERNAL
    weight.ClearField("raw_data")
    for key, value in (("location", "../../etc/passwd"), ("length", "12")):
        entry = weight.external_data.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(tmp_path / "escapes.onnx"))
    result = run("--engine", tmp_path / "escapes.onnx", sample_image_paths()[0], "-o", tmp_path / "out")
    assert result.exit_code == 2 and "ONNX Runtime cannot load it" in result.stderr, result.output
    assert "External data path" in result.stderr and "could not start a session" not in result.stderr


def test_dermseg_serve_checks_its_model_before_ray_starts(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="dermseg-serve needs Ray: pip install 'dermseg[ray]' (the dev extra has it)")
    from dermseg_deploy.cli import serve as cli_serve

    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(tiny_onnx(tmp_path / "whole.onnx").read_bytes()[:200])
    for model, expected in ((truncated, "ONNX Runtime cannot load it"),
                            (tiny_onnx(tmp_path / "deep.onnx", metadata="[" * 50 + "]" * 50), "nested 50 levels deep")):
        result = CliRunner().invoke(cli_serve.main, ["--engine", str(model), "--port", "1"])
        assert result.exit_code == 2 and expected in result.stderr, result.output
        assert "Traceback" not in result.output and "Deploying application" not in result.output


def _hostile_shipped(tmp_path: Path, **changes: Any) -> Path:
    folder = tmp_path / "models"
    shutil.copytree(shipped.SHIPPED_DIR, folder)
    manifest = json.loads((folder / shipped.MANIFEST_NAME).read_text())
    (folder / shipped.MANIFEST_NAME).write_text(json.dumps(manifest | changes))
    return folder


@pytest.mark.parametrize("name", [".", "..", "/dev/zero", "../../../etc/passwd", "sub/scratch.int8.onnx", ""])
def test_the_shipped_manifest_file_must_be_a_plain_name_in_models(tmp_path: Path, name: str) -> None:
    with pytest.raises(ModelFileError, match="is not a plain file name"):
        shipped.verified_shipped_model(_hostile_shipped(tmp_path, file=name))


def test_the_shipped_file_must_be_a_regular_file_of_its_size(tmp_path: Path) -> None:
    folder = _hostile_shipped(tmp_path, file="zero")
    os.symlink("/dev/zero", folder / "zero")  # would hash for ever if it were opened
    with pytest.raises(ModelFileError, match="not a regular file"):
        shipped.verified_shipped_model(folder)
    folder = _hostile_shipped(tmp_path / "b", size_bytes=12)
    with pytest.raises(ModelFileError, match="bytes where manifest.json records 12"):
        shipped.verified_shipped_model(folder)
    deep = _hostile_shipped(tmp_path / "c")
    (deep / shipped.MANIFEST_NAME).write_text("[" * 1000 + "]" * 1000)
    with pytest.raises(ModelFileError, match="nested 1000 levels deep"):
        shipped.shipped_model(deep)


def test_text_from_files_is_printed_with_control_characters_escaped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   onnx_path: Path) -> None:
    assert printable("ok\nerror: forged\x1b[2J\u202e\udcff") == "ok\\x0aerror: forged\\x1b[2J\\u202e\\xff"
    folder = _hostile_shipped(tmp_path, summary="a model\nerror: forged line")
    monkeypatch.setattr(shipped, "SHIPPED_DIR", folder)
    monkeypatch.setattr(shipped.verified_shipped_model, "__defaults__", (folder,))
    result = run(sample_image_paths()[0], "-o", tmp_path / "out", "-q")
    assert result.exit_code == 0, result.output
    assert "a model\\x0aerror: forged line" in result.stderr
    assert not any(line.startswith("error: forged") for line in result.stderr.splitlines())


def test_eval_report_keeps_names_that_are_not_utf8_and_refuses_a_symlinked_folder(tmp_path: Path,
                                                                                  onnx_path: Path) -> None:
    data = _pairs(tmp_path / "data")
    first = sorted((data / "images").iterdir())[0]
    odd_id = os.fsdecode(b"ISIC_l\xe9sion")
    first.rename(first.with_name(f"{odd_id}.jpg"))
    mask = data / "masks" / f"{first.stem}_segmentation.png"
    mask.rename(mask.with_name(f"{odd_id}_segmentation.png"))
    report = tmp_path / "report"
    result = CliRunner().invoke(cli_eval.main, [str(data), "--engine", str(onnx_path), "--report", str(report),
                                                "--json", str(tmp_path / "e.json")])
    assert result.exit_code == 0, result.output
    assert os.fsencode(odd_id) in (report / "per_image.csv").read_bytes()  # the file's own bytes, as manifest.csv keeps
    assert "ISIC_l\\xe9sion" in (report / "index.html").read_text(encoding="utf-8")
    json.loads((tmp_path / "e.json").read_text())

    real = tmp_path / "real-report"
    real.mkdir()
    os.symlink(real, tmp_path / "link")
    refused = CliRunner().invoke(cli_eval.main, [str(data), "--engine", str(onnx_path), "--report",
                                                 str(tmp_path / "link")])
    assert refused.exit_code == 2 and "is a symbolic link" in refused.stderr, refused.output
    assert (tmp_path / "link").is_symlink() and not list(tmp_path.glob(".dermseg-tmp-*"))


def test_a_pil_image_of_an_unlisted_format_is_refused_but_one_made_in_memory_is_fine(tmp_path: Path) -> None:
    made = Image.new("RGB", (8, 6))
    assert as_pixels_or_path(made).shape == (6, 8, 3)  # type: ignore[union-attr]
    with Image.open(io.BytesIO(_encoded("GIF"))) as gif, pytest.raises(InputImageError, match="format GIF"):
        as_pixels_or_path(gif)
    (tmp_path / "bomb.png").write_bytes(_bomb_png(12000, 12000))  # under Pillow's own bomb limit, over ours
    with pytest.raises(ImageTooLargeError, match="mask has 12000x12000 = 144000000 pixels, over the limit of 120000000"):
        read_mask(tmp_path / "bomb.png")
