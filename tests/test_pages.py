"""The pages, in a real browser (headless Chromium): `dermseg-eval --report`'s page opened from disk, and the page
`dermseg-serve` shows at `/`, used as a person would (a file chosen in its file input)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from dermseg_deploy.cli import eval as eval_cli
from dermseg_deploy.samples import SAMPLES_DIR, sample_image_paths

from .browser import canvas_pixels, console_errors, file_url, require_browser, start_chromium, wait_for
from .conftest import SERVE_MAX_PIXELS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser() -> Any:
    require_browser()
    yield from start_chromium()


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory, onnx_path: Path) -> Path:
    folder = tmp_path_factory.mktemp("report") / "report"
    result = CliRunner().invoke(eval_cli.main, [str(SAMPLES_DIR), "--engine", str(onnx_path), "--device", "cpu",
                                                "--report", str(folder), "--report-worst", "3", "--report-sample", "2"])
    assert result.exit_code == 0, result.output
    return folder


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_the_report_page_opens_offline_with_every_picture_and_the_worst_image_first(browser: Any,
                                                                                    report: Path) -> None:
    from selenium.webdriver.common.by import By

    page = (report / "index.html").read_text()
    assert "http://" not in page and "https://" not in page  # nothing to fetch: it opens offline
    browser.get(file_url(report / "index.html"))
    images = browser.execute_script(
        "return Array.from(document.images).map(function (i) { return [i.getAttribute('src'), i.complete, "
        "i.naturalWidth]; });")
    assert len(images) == 2 + 3 + 2, images  # the histogram, the predicted-Jaccard scatter, the 3 worst and 2 sampled
    assert [src for src, _, _ in images[:2]] == ["histogram.png", "predicted-jaccard.png"], images
    assert all(complete and width > 0 for _, complete, width in images), images
    rows = _csv_rows(report / "per_image.csv")
    jaccards = [float(row["jaccard"]) for row in rows]
    assert len(rows) == 8 and jaccards == sorted(jaccards)
    worst = [f.get_attribute("data-id") for f in browser.find_elements(By.CSS_SELECTOR, "#worst figure")]
    assert worst == [row["image_id"] for row in rows[:3]]  # the lowest Jaccard of the CSV comes first
    table = browser.find_element(By.ID, "images")
    header = table.find_elements(By.TAG_NAME, "th")[1]
    assert header.text == "Jaccard"
    header.click()
    header.click()  # descending
    first = table.find_element(By.CSS_SELECTOR, "tbody tr td").text
    assert first == max(rows, key=lambda row: (float(row["jaccard"]), row["image_id"]))["image_id"]
    assert console_errors(browser) == []


def _state(browser: Any) -> str | None:
    return browser.execute_script("return document.body.getAttribute('data-state');")


def _upload(browser: Any, served: Any, path: Path) -> str:
    from selenium.webdriver.common.by import By

    browser.get(served.url + "/")
    wait_for(lambda: browser.execute_script("return document.body.getAttribute('data-ready');") == "true",
             what="the page to read the model's settings")
    browser.find_element(By.ID, "file").send_keys(str(path))
    return str(wait_for(lambda: _state(browser) in ("done", "error") and _state(browser), what="the result"))


@pytest.mark.ray
def test_the_serve_page_segments_an_upload_and_draws_the_mask_the_api_returns(browser: Any, served: Any) -> None:
    from selenium.webdriver.common.by import By

    image = sample_image_paths()[2]
    assert _upload(browser, served, image) == "done"
    drawn = canvas_pixels(browser, "#mask")
    expected = served.segment(image)
    assert drawn.shape[:2] == expected.shape
    assert np.array_equal(drawn[..., 0], expected) and np.array_equal(drawn[..., 1], expected)
    fraction = np.count_nonzero(expected) / expected.size
    assert browser.find_element(By.ID, "fraction").text == f"{100 * fraction:.2f} %"
    stages = [row.text.split()[0] for row in browser.find_elements(By.CSS_SELECTOR, "#stages tbody tr")]
    assert stages == ["read", "decode", "preprocess", "inference", "postprocess", "write"]
    settings = browser.find_element(By.ID, "settings").text
    assert "onnxruntime-cpu" in settings and "input size px 64" in settings
    overlay = canvas_pixels(browser, "#overlay")
    green = (overlay[..., 0] == 0) & (overlay[..., 1] == 255) & (overlay[..., 2] == 0)
    has_border = bool(expected.any() and not expected.all())
    assert green.any() == has_border  # the outline is drawn where the mask has a border
    assert console_errors(browser) == []


@pytest.mark.ray
def test_a_bad_upload_shows_the_error_the_api_gives(browser: Any, served: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    text = tmp_path / "notes.jpg"
    text.write_text("these are notes, not an image")
    assert _upload(browser, served, text) == "error"
    error = browser.find_element(By.ID, "error").text
    assert error.startswith("HTTP 400: error: notes.jpg: is not an image in a format dermseg reads"), error
    assert not browser.find_element(By.ID, "result").is_displayed()
    bomb = tmp_path / "large.png"
    buffer = io.BytesIO()
    Image.new("L", (2000, 1000)).save(buffer, format="PNG")  # 2 M pixels, over the served limit
    bomb.write_bytes(buffer.getvalue())
    assert _upload(browser, served, bomb) == "error"
    error = browser.find_element(By.ID, "error").text
    assert error.startswith("HTTP 413: error: large.png:") and f"over the limit of {SERVE_MAX_PIXELS}" in error, error
