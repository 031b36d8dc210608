"""The Python API: the input contract of `segment`, `segment_files` results, threads and repr."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from dermseg_deploy import Segmenter
from dermseg_deploy.cli import run as cli_run
from dermseg_deploy.errors import DermsegError, InputImageError
from dermseg_deploy.samples import sample_image_paths
from dermseg_deploy.segment.image_input import ImageShapeError, ImageTypeError

from .helpers import displayed_size


@pytest.fixture(scope="module")
def segmenter(onnx_path: Path) -> Segmenter:
    return Segmenter.open(onnx_path)


@pytest.fixture(scope="module")
def rgb() -> np.ndarray:
    with Image.open(sample_image_paths()[2]) as image:
        return np.asarray(image.convert("RGB").resize((97, 71)))


def test_one_array_is_one_image_and_a_list_is_several(segmenter: Segmenter, rgb: np.ndarray) -> None:
    mask = segmenter.segment(rgb)
    assert isinstance(mask, np.ndarray) and mask.shape == (71, 97) and mask.dtype == np.uint8
    assert set(np.unique(mask).tolist()) <= {0, 255}
    masks = segmenter.segment([rgb, rgb[:40]])
    assert isinstance(masks, list) and [m.shape for m in masks] == [(71, 97), (40, 97)]
    assert np.array_equal(masks[0], mask)
    assert segmenter.segment((rgb,))[0].shape == (71, 97)


def test_every_accepted_form_of_one_image_gives_the_same_mask(segmenter: Segmenter, rgb: np.ndarray, tmp_path: Path) -> None:
    expected = segmenter.segment(rgb)
    rgba = np.concatenate([rgb, np.full((*rgb.shape[:2], 1), 7, np.uint8)], axis=2)
    tensor = torch.from_numpy(rgb.copy()).permute(2, 0, 1)
    path = tmp_path / "image.png"
    Image.fromarray(rgb).save(path)
    for form in (rgba, tensor, Image.fromarray(rgb), path, str(path)):
        assert np.array_equal(segmenter.segment(form), expected), type(form)
    assert np.array_equal(segmenter.segment_file(path), expected)
    grey = rgb.mean(axis=2).astype(np.uint8)
    assert np.array_equal(segmenter.segment(grey), segmenter.segment(np.repeat(grey[..., None], 3, axis=2)))


def test_a_pil_image_is_oriented_as_a_viewer_shows_it(segmenter: Segmenter, rgb: np.ndarray) -> None:
    exif = Image.fromarray(rgb).getexif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", exif=exif.tobytes())
    with Image.open(io.BytesIO(buffer.getvalue())) as image:
        assert segmenter.segment(image).shape == (97, 71)


@pytest.mark.parametrize("value,error,fragments", [
    (np.zeros((20, 30, 3), np.float32), ImageTypeError, ["dtype float32", "uint8", "scale float images"]),
    (np.zeros((20, 30, 3), np.int16), ImageTypeError, ["dtype int16", "uint8"]),
    (torch.zeros(3, 20, 30), ImageTypeError, ["torch.float32", "uint8 tensor"]),
    (np.zeros((20, 30, 5), np.uint8), ImageShapeError, ["shape (20, 30, 5)", "(H, W, 3)"]),
    (np.zeros((2, 20, 30, 3), np.uint8), ImageShapeError, ["4-D", "as a list"]),
    (torch.zeros(20, 30, 3, dtype=torch.uint8), ImageShapeError, ["(3, H, W)", "shape (20, 30, 3)"]),
    (12, ImageTypeError, ["builtins.int", "a list of them"]),
])
def test_other_inputs_are_refused_with_what_was_given_and_what_is_expected(
    segmenter: Segmenter, value: object, error: type[Exception], fragments: list[str]
) -> None:
    with pytest.raises(error) as info:
        segmenter.segment(value)  # type: ignore[arg-type]
    assert isinstance(info.value, DermsegError)
    assert isinstance(info.value, TypeError if error is ImageTypeError else ValueError)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


def test_segment_file_refuses_a_pil_image_clearly_and_a_bad_file_raises_an_input_error(
    segmenter: Segmenter, rgb: np.ndarray, tmp_path: Path
) -> None:
    with pytest.raises(ImageTypeError, match="segment_file takes a path.*use segment()"):
        segmenter.segment_file(Image.fromarray(rgb))  # type: ignore[arg-type]
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    with pytest.raises(InputImageError, match="bad.jpg: is not an image"):
        segmenter.segment(bad)


def test_repr_names_model_backend_device_input_size_and_mask_settings(segmenter: Segmenter, onnx_path: Path) -> None:
    assert repr(segmenter) == (f"Segmenter(model={str(onnx_path)!r}, backend='onnxruntime-cpu', device='cpu', "
                               "input=64x64, masks='plain')")


def test_segment_files_gives_one_result_per_input_and_never_raises_for_a_bad_one(
    segmenter: Segmenter, tmp_path: Path
) -> None:
    good = sample_image_paths()[:2]
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"<html>not an image</html>")
    missing = tmp_path / "missing.jpg"
    twin = tmp_path / good[0].name
    shutil.copy(good[0], twin)
    paths = [good[0], bad, missing, good[1], twin]
    results = segmenter.segment_files(paths)
    assert [r.status for r in results] == ["ok", "failed", "failed", "ok", "ok"]
    assert [r.source for r in results] == [str(p) for p in paths]
    assert results[0].mask is not None and results[0].mask.shape == displayed_size(good[0])
    assert results[0].mask_path is None and 0.0 <= (results[0].lesion_fraction or 0.0) <= 1.0
    assert results[1].mask is None and results[1].message == f"{bad}: is not an image in a format dermseg reads " \
        "(JPEG, PNG, BMP, TIFF)"
    assert results[2].message == f"{missing}: does not exist"

    out = tmp_path / "out"
    written = segmenter.segment_files(paths, out)
    assert [r.status for r in written] == ["ok", "failed", "failed", "ok", "failed"]
    assert "would overwrite" in (written[4].error or "")
    assert written[0].mask is None and written[0].mask_path == out / f"{good[0].stem}_segmentation.png"
    assert np.array_equal(np.asarray(Image.open(written[0].mask_path)), results[0].mask)
    again = segmenter.segment_files(paths, out)
    assert [r.status for r in again] == ["skipped", "failed", "failed", "skipped", "failed"]

    cli = CliRunner().invoke(cli_run.main, ["--engine", str(segmenter.backend.path), str(bad), "-o", str(tmp_path / "c"), "-q"])
    assert f"error: {results[1].message}" in cli.stderr


def test_threads_reach_onnxruntime_and_pytorch(onnx_path: Path, checkpoint_path: Path) -> None:
    with Segmenter.open(onnx_path, threads=1) as seg:
        assert seg.backend.session.get_session_options().intra_op_num_threads == 1  # type: ignore[attr-defined]
    before = torch.get_num_threads()
    try:
        with Segmenter.open(checkpoint_path, size_px=64, threads=1):
            assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
