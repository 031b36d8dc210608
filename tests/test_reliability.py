"""Every bad input answered, nothing lost: the input matrix, kill-and-rerun, SIGINT, write failures, fuzzing."""

from __future__ import annotations

import csv
import io
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from dermseg_deploy.backends import open_backend
from dermseg_deploy.cli import run as cli_run
from dermseg_deploy.core.decode import decode_image
from dermseg_deploy.core.preprocess import preprocess
from dermseg_deploy.errors import InferenceError, InputImageError, ModelFileError
from dermseg_deploy.model.metadata import ModelMetadata
from dermseg_deploy.samples import sample_image_paths
from dermseg_deploy.util.atomic import TEMP_PREFIX, remove_stale_temp_files

from .conftest import ISIC2017_FULLRES
from .helpers import displayed_size, read_png

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli_run.main, [str(a) for a in args])


def _real_image() -> Image.Image:
    """A real dermoscopic image: a full-resolution ISIC 2017 one downscaled where ../shared is present, else a sample."""
    if ISIC2017_FULLRES.is_dir():
        source = sorted((ISIC2017_FULLRES / "ISIC-2017_Validation_Data").glob("*.jpg"))[0]
    else:
        source = sample_image_paths()[0]
    with Image.open(source) as image:
        image.draft("RGB", (640, 640))
        return image.convert("RGB").resize((301, 203))


def _save(image: Image.Image, path: Path, fmt: str, **params: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format=fmt, **params)
    return path


def _bytes(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


@pytest.fixture()
def matrix(tmp_path: Path) -> tuple[Path, dict[str, str | None]]:
    """A folder of real images made odd; value = the expected reason fragment, None for a good image."""
    folder = tmp_path / "in"
    image = _real_image()
    expected: dict[str, str | None] = {}

    def good(name: str, fmt: str, converted: Image.Image | None = None, **params: object) -> None:
        _save(converted or image, folder / name, fmt, **params)
        expected[name] = None

    good("grayscale.jpg", "JPEG", image.convert("L"))
    good("rgba.png", "PNG", image.convert("RGBA"))
    good("palette.png", "PNG", image.convert("P"))
    good("cmyk.jpg", "JPEG", image.convert("CMYK"))
    good("progressive.jpg", "JPEG", progressive=True)
    good("png-named.jpg", "PNG")
    good("UPPER.JPEG", "JPEG")
    good("tiny-1x1.png", "PNG", image.resize((1, 1)))
    good("small-8x8.bmp", "BMP", image.resize((8, 8)))
    good("nested/deeper/éclat lésion.tif", "TIFF")
    sixteen = (np.asarray(image.convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    _save(Image.fromarray(sixteen), folder / "sixteen-bit.png", "PNG")
    expected["sixteen-bit.png"] = None
    for orientation in range(1, 9):
        exif = image.getexif()
        exif[0x0112] = orientation
        good(f"exif-{orientation}.jpg", "JPEG", exif=exif.tobytes())

    data = _bytes(image, "JPEG")
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 2])
    expected["truncated.jpg"] = "cannot be decoded"
    (folder / "zero.jpg").write_bytes(b"")
    expected["zero.jpg"] = "empty"
    (folder / "page.jpg").write_text("<html><body>not an image</body></html>")
    expected["page.jpg"] = "not an image"
    _save(image.resize((400, 300)), folder / "huge.png", "PNG")
    expected["huge.png"] = "over the limit"
    (folder / "link.jpg").symlink_to(folder / "progressive.jpg")
    expected["link.jpg"] = None
    (folder / "broken.jpg").symlink_to(folder / "absent.jpg")
    expected["broken.jpg"] = "broken symbolic link"
    os.mkfifo(folder / "fifo.jpg")
    expected["fifo.jpg"] = "not a regular file"
    _save(image, folder / "twin.jpg", "JPEG")
    _save(image, folder / "twin.png", "PNG")
    expected["twin.jpg"] = None
    expected["twin.png"] = "would overwrite"
    return folder, expected


def test_input_matrix_every_file_gets_a_mask_or_one_clear_line(
    matrix: tuple[Path, dict[str, str | None]], tmp_path: Path, checkpoint_path: Path
) -> None:
    folder, expected = matrix
    out = tmp_path / "out"
    report = tmp_path / "failures.csv"
    result = run("--engine", checkpoint_path, folder, "-o", out, "-q", "--size", "64", "--max-pixels", "100000",
                 "--report", report)
    assert result.exit_code == 1, result.output
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    bad = {name: reason for name, reason in expected.items() if reason is not None}
    assert len(error_lines) == len(bad), "\n".join(error_lines)
    for name, reason in bad.items():
        assert any(name in line and reason in line for line in error_lines), (name, result.stderr)
    for name, reason in expected.items():
        if reason is not None:
            continue
        mask = read_png(out / Path(name).parent / f"{Path(name).stem}_segmentation.png")
        assert mask.shape == displayed_size(folder / name), name
        assert set(np.unique(mask).tolist()) <= {0, 255}
    rows = list(csv.DictReader(report.open()))
    assert {Path(r["file"]).name for r in rows} == set(bad) and all(r["error"] for r in rows)


def test_exif_orientation_lines_the_image_up_as_a_viewer_shows_it(tmp_path: Path) -> None:
    """Decoding a file stored with orientation k gives exactly the displayed image (lossless PNG)."""
    displayed = _real_image()
    reference = decode_image(_bytes(displayed, "PNG"))
    inverse = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
               5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE,
               8: Image.Transpose.ROTATE_270}
    for orientation in range(1, 9):
        stored = displayed.transpose(inverse[orientation]) if orientation in inverse else displayed
        exif = stored.getexif()
        exif[0x0112] = orientation
        decoded = decode_image(_bytes(stored, "PNG", exif=exif.tobytes()))
        assert np.array_equal(decoded, reference), orientation


def test_unlistable_folder_is_one_error_and_the_rest_goes_on(
    tmp_path: Path, checkpoint_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "in"
    _save(_real_image(), folder / "good.jpg", "JPEG")
    _save(_real_image(), folder / "locked" / "hidden.jpg", "JPEG")
    real_scandir = os.scandir

    def scandir(path: object = ".") -> object:
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "scandir", scandir)
    result = run("--engine", checkpoint_path, folder, "-o", tmp_path / "out", "-q", "--size", "64")
    assert result.exit_code == 1
    assert "locked: folder cannot be listed" in result.stderr
    assert (tmp_path / "out" / "good_segmentation.png").is_file()


def test_a_full_disk_is_one_clear_error(tmp_path: Path, checkpoint_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dermseg_deploy.files import outputs

    def full(path: object, data: bytes, make_folder: bool = True) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(outputs, "atomic_write_bytes", full)
    result = run("--engine", checkpoint_path, sample_image_paths()[0], "-o", tmp_path / "out", "-q", "--size", "64")
    assert result.exit_code == 2
    assert "No space left on device" in result.stderr and "Traceback" not in result.output


def test_an_output_folder_that_cannot_be_made_is_one_clear_error(tmp_path: Path, checkpoint_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run("--engine", checkpoint_path, sample_image_paths()[0], "-o", blocker / "out", "-q")
    assert result.exit_code == 2 and "cannot create the output folder" in result.stderr


def test_read_only_output_folder_is_one_clear_error(tmp_path: Path, checkpoint_path: Path) -> None:
    """/proc is read-only even for root."""
    result = run("--engine", checkpoint_path, sample_image_paths()[0], "-o", "/proc/dermseg-out", "-q")
    assert result.exit_code == 2 and "error:" in result.stderr and "Traceback" not in result.output


def test_corrupt_and_truncated_onnx_files_are_clear_errors(tmp_path: Path, onnx_path: Path) -> None:
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(onnx_path.read_bytes()[:5000])
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(os.urandom(4096))
    for path in (truncated, garbage):
        with pytest.raises(ModelFileError, match="ONNX Runtime cannot load it"):
            open_backend(path)
        result = run("--engine", path, sample_image_paths()[0], "-o", tmp_path / "out", "-q")
        assert result.exit_code == 2 and path.name in result.stderr


def test_onnxruntime_failures_keep_their_whole_message_and_the_right_exit_code(tmp_path: Path, onnx_path: Path) -> None:
    from dermseg_deploy.backends.onnxruntime_backend import session_error
    from dermseg_deploy.cli.common import exit_code_for

    provider_failure = type("EPFail", (Exception,), {})("[ONNXRuntimeError] : 11 : EP_FAIL : CUDA failure 2:\nout of memory")
    error = session_error(provider_failure, tmp_path / "m.onnx")
    assert exit_code_for(error) == 4 and "could not start a session (EPFail: [ONNXRuntimeError]" in str(error)
    assert "CUDA failure 2: out of memory" in str(error)  # every line kept, on one line
    bad_file = type("InvalidProtobuf", (Exception,), {})("Protobuf parsing failed.")
    assert exit_code_for(session_error(bad_file, tmp_path / "m.onnx")) == 2
    with open_backend(onnx_path) as backend, pytest.raises(InferenceError, match="failed on a batch of shape") as info:
        backend.infer(np.zeros((1, 3, 32, 32), dtype=np.float32))  # the model was exported for 64x64
    assert exit_code_for(info.value) == 70 and "Got invalid dimensions" in str(info.value)


def test_stale_temp_files_of_dead_processes_are_removed(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f"{TEMP_PREFIX}{int(dead.stdout)}-abc.png"
    mine = tmp_path / f"{TEMP_PREFIX}{os.getpid()}-abc.png"
    stale.write_bytes(b"partial")
    mine.write_bytes(b"in progress")
    assert remove_stale_temp_files(tmp_path) == [stale]
    assert mine.exists()


def _copies(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True)
    samples = sample_image_paths()
    for index in range(count):
        shutil.copy(samples[index % len(samples)], folder / f"image-{index:03d}.jpg")
    return folder


def _run_command(model: Path, inputs: Path, out: Path) -> list[str]:
    return [sys.executable, "-c", "from dermseg_deploy.cli.run import main; main()", "--engine", str(model),
            str(inputs), "-o", str(out), "--size", "64", "--batch-size", "2", "--device", "cpu", "-q"]


@pytest.mark.slow
def test_sigkill_at_a_random_moment_then_rerun_gives_the_uninterrupted_result(tmp_path: Path, checkpoint_path: Path) -> None:
    inputs = _copies(tmp_path / "in", 40)
    reference = tmp_path / "reference"
    subprocess.run(_run_command(checkpoint_path, inputs, reference), check=True, cwd=ROOT, capture_output=True)
    out = tmp_path / "out"
    process = subprocess.Popen(_run_command(checkpoint_path, inputs, out), cwd=ROOT, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not list(out.glob("*_segmentation.png")) and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(random.Random(0).uniform(0.0, 0.5))
    process.kill()
    process.wait()
    written = sorted(out.glob("*_segmentation.png"))
    assert 0 < len(written) < 40, "the kill should land mid-run"
    for mask in written:
        with Image.open(mask) as image:
            image.load()  # every mask on disk is whole
    rerun = subprocess.run(_run_command(checkpoint_path, inputs, out), cwd=ROOT, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    for mask in reference.glob("*_segmentation.png"):
        assert (out / mask.name).read_bytes() == mask.read_bytes()
    assert not list(out.rglob(f"{TEMP_PREFIX}*"))


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "exit_code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_sigint_or_sigterm_stops_after_the_current_batch_and_writes_the_manifest(
    tmp_path: Path, checkpoint_path: Path, signum: int, exit_code: int
) -> None:
    inputs = _copies(tmp_path / "in", 60)
    out = tmp_path / "out"
    process = subprocess.Popen(_run_command(checkpoint_path, inputs, out), cwd=ROOT, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(out.glob("*_segmentation.png")) and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == exit_code, stderr
    assert f"{signal.Signals(signum).name}: stopping after the current batch" in stderr and "not started" in stderr
    rows = list(csv.DictReader((out / "manifest.csv").open()))
    assert 0 < len(rows) < 60 and all(r["status"] == "ok" for r in rows)
    assert len(list(out.glob("*_segmentation.png"))) == len(rows)
    assert not list(out.rglob(f"{TEMP_PREFIX}*"))


def _fuzz_seeds() -> list[bytes]:
    image = _real_image().resize((64, 48))
    return [_bytes(image, "JPEG"), _bytes(image, "JPEG", progressive=True), _bytes(image, "PNG"),
            _bytes(image.convert("P"), "PNG")]


FUZZ_SEEDS = _fuzz_seeds()


@st.composite
def mutated_images(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(FUZZ_SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        action = draw(st.sampled_from(["flip", "cut", "insert"]))
        position = draw(st.integers(0, max(0, len(data) - 1)))
        if action == "flip" and data:
            data[position] ^= draw(st.integers(1, 255))
        elif action == "cut":
            del data[position : position + draw(st.integers(1, 64))]
        else:
            data[position:position] = draw(st.binary(min_size=1, max_size=16))
    return bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(mutated_images(), st.binary(max_size=2048)))
def test_fuzzed_bytes_give_an_image_or_a_typed_error(data: bytes) -> None:
    metadata = ModelMetadata(size_px=32)
    try:
        image = decode_image(data, "fuzz.jpg", max_pixels=4_000_000)
    except InputImageError:
        return
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert preprocess(image, metadata).shape == (3, 32, 32)
