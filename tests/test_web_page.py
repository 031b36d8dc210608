"""`dermseg-export --formats web`: a page that segments in the browser. In headless Chromium, served by a plain static
server: its network input matches `core.preprocess` to 1e-4, its masks match `dermseg-run --full-decode`'s (same
model), its predicted Jaccard matches Python's, it asks for nothing but its own folder's files (a control that
fetches elsewhere is caught), and bad input and an altered folder each get one line on the page; `dermseg-serve`
offers it at /local/, cross-origin isolated (several threads), and no other file."""

from __future__ import annotations

import base64
import io
import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from dermseg_deploy.backends.onnxruntime_backend import OnnxRuntimeBackend
from dermseg_deploy.cli import export as cli_export
from dermseg_deploy.cli import run as cli_run
from dermseg_deploy.core.decode import decode_image
from dermseg_deploy.core.preprocess import preprocess
from dermseg_deploy.export.web_folder import (
    ORT_WEB_VERSION,
    WebRuntimeUnavailableError,
    model_metadata,
    runtime_tarball,
    write_web_folder,
)
from dermseg_deploy.model.shipped import verified_shipped_model
from dermseg_deploy.samples import sample_image_paths
from dermseg_deploy.segment.segmenter import Segmenter

from .browser import network_requests, require_browser, serve_folder, start_chromium, wait_for
from .helpers import output_scale, read_png

pytestmark = pytest.mark.slow


def _require_runtime() -> None:
    try:
        runtime_tarball()
    except WebRuntimeUnavailableError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{exc}; under CI the web page test must run")
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def web_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped model's web folder, made by the command a user runs (runtime install only: no torch needed)."""
    _require_runtime()
    out = tmp_path_factory.mktemp("web")
    result = CliRunner().invoke(cli_export.main, ["--formats", "web", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert f"ONNX Runtime Web {ORT_WEB_VERSION}" in result.stdout and "the model in INT8" in result.stdout
    return out / "scratch.web"


@pytest.fixture(scope="module")
def static_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """`python -m http.server` in a thread, serving a folder the tests fill: (base URL, folder)."""
    root = tmp_path_factory.mktemp("served")
    server, base = serve_folder(root)
    yield base, root
    server.shutdown()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require_browser()
    yield from start_chromium(performance_log=True)


def _open(browser: Any, url: str) -> None:
    network_requests(browser)  # drop what came before (the browser's own start page)
    browser.get(url)
    wait_for(lambda: browser.execute_script("return document.body.getAttribute('data-ready')"), 120, "the page's start")


def _segment(browser: Any, path: Path) -> dict[str, Any]:
    browser.execute_script("document.body.removeAttribute('data-state')")
    browser.find_element("id", "file").send_keys(str(path))
    state = wait_for(lambda: browser.execute_script("return document.body.getAttribute('data-state') !== 'busy' && "
                                                    "document.body.getAttribute('data-state')"), 120, path.name)
    if state != "done":
        return {"error": browser.find_element("id", "error").text}
    width, height = browser.execute_script("return [window.dermseg.width, window.dermseg.height]")
    runs = browser.execute_script("return window.dermseg.maskRuns()")
    mask = np.repeat(np.arange(len(runs)) % 2, runs).astype(bool).reshape(height, width)
    network, logits = (np.frombuffer(base64.b64decode(browser.execute_script(f"return window.dermseg.base64('{name}')")),
                                     np.float32) for name in ("input", "logits"))
    return {"mask": mask, "input": network, "logits": logits,
            "predicted": browser.execute_script("return window.dermseg.predicted"),
            "ms": browser.execute_script("return window.dermseg.ms.total")}


def test_the_page_segments_as_the_runtime_does_and_asks_for_nothing_else(
        web_folder: Path, static_server: tuple[str, Path], browser: Any, tmp_path: Path) -> None:
    base, root = static_server
    shutil.copytree(web_folder, root / "page")
    url = f"{base}/page/index.html"
    _open(browser, url)
    assert browser.execute_script("return document.body.getAttribute('data-ready')") == "true", \
        browser.find_element("id", "error").text
    assert "1 thread (this page is not cross-origin isolated)" in browser.find_element("id", "settings").text
    metadata = model_metadata(verified_shipped_model().path)

    rotated = tmp_path / "rotated.jpg"  # EXIF orientation 6: the page must see it as a viewer does
    with Image.open(sample_image_paths()[0]) as picture:
        exif = picture.getexif()
        exif[0x0112] = 6
        picture.save(rotated, exif=exif, quality=95)
    images = [*sample_image_paths(), rotated]
    expected = CliRunner().invoke(cli_run.main, [*map(str, images), "-o", str(tmp_path / "masks"), "-q", "--full-decode",
                                                 "--device", "cpu"])
    assert expected.exit_code == 0, expected.output
    with Segmenter.open(None, "cpu", reduced_jpeg=False) as segmenter:
        python_quality = [segmenter.segment(path, quality=True).predicted_jaccard for path in images]

    runtime = OnnxRuntimeBackend(verified_shipped_model().path, "cpu")
    ious, input_errors, logit_errors, quality_errors = {}, {}, {}, {}
    for path, predicted in zip(images, python_quality):
        got = _segment(browser, path)
        assert "error" not in got, (path.name, got)
        reference = read_png(tmp_path / "masks" / f"{path.stem}_segmentation.png") > 0
        assert got["mask"].shape == reference.shape, path.name
        union = np.logical_or(got["mask"], reference).sum()
        ious[path.name] = 1.0 if union == 0 else float(np.logical_and(got["mask"], reference).sum() / union)
        network = preprocess(decode_image(path.read_bytes(), path), metadata).ravel()
        input_errors[path.name] = float(np.abs(got["input"] - network).max())
        logits = runtime.infer(network.reshape(1, 3, metadata.size_px, metadata.size_px))
        logit_errors[path.name] = float(np.abs(got["logits"] - np.asarray(logits).ravel()).max())
        quality_errors[path.name] = abs(got["predicted"] - predicted)
    assert max(input_errors.values()) <= 1e-4, input_errors
    step = output_scale(verified_shipped_model().path)  # the INT8 output's step: rounding may differ by one
    assert max(logit_errors.values()) <= step * 1.01, (step, logit_errors)
    assert max(quality_errors.values()) <= 1e-3, quality_errors
    worst = min(ious, key=ious.__getitem__)
    assert sum(ious.values()) / len(ious) >= 0.99, f"mean IoU {sum(ious.values()) / len(ious):.4f}, worst {worst}"

    requests = network_requests(browser)
    assert requests and all(u.startswith(f"{base}/page/") or u.startswith(("data:", "blob:")) for u, _ in requests), requests
    assert not [u for u, status in requests if status == 404]

    control = root / "control"  # the negative control: the same page, edited to fetch elsewhere
    shutil.copytree(web_folder, control)
    page = (control / "index.html").read_text()
    (control / "index.html").write_text(page.replace("</body>", "<script>fetch('http://127.0.0.1:9/elsewhere')"
                                                                 ".catch(() => {});</script></body>"))
    _open(browser, f"{base}/control/index.html")
    outside = [u for u, _ in network_requests(browser) if not u.startswith(f"{base}/control/")
               and not u.startswith(("data:", "blob:"))]
    assert outside == ["http://127.0.0.1:9/elsewhere"]


def test_bad_input_and_an_altered_folder_get_one_line_on_the_page(web_folder: Path, static_server: tuple[str, Path],
                                                                  browser: Any, tmp_path: Path) -> None:
    base, root = static_server
    shutil.copytree(web_folder, root / "bad")
    _open(browser, f"{base}/bad/index.html")
    text = tmp_path / "notes.jpg"
    text.write_text("not an image at all")
    assert _segment(browser, text)["error"] == ("notes.jpg: is not an image in a format dermseg reads "
                                                "(JPEG, PNG, BMP, TIFF)")
    bomb = tmp_path / "bomb.png"
    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    data[16:24] = (60000).to_bytes(4, "big") + (60000).to_bytes(4, "big")  # the header claims 60000 x 60000
    bomb.write_bytes(bytes(data))
    assert "bomb.png: has 3600000000 pixels, over the limit of 120000000" in _segment(browser, bomb)["error"]

    for name, change, expected in (("missing", lambda f: (f / "ort" / "ort-wasm-simd-threaded.wasm").unlink(),
                                    "ort/ort-wasm-simd-threaded.wasm: missing from this folder"),
                                   ("altered", lambda f: (f / "model.json").write_text("{}"),
                                    "model.json: its SHA-256 differs from manifest.json")):
        folder = root / name
        shutil.copytree(web_folder, folder)
        change(folder)
        _open(browser, f"{base}/{name}/index.html")
        assert browser.execute_script("return document.body.getAttribute('data-ready')") == "failed"
        assert expected in browser.find_element("id", "error").text


def test_the_export_refuses_in_one_line_where_onnx_runtime_web_cannot_be_had(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm
    result = CliRunner().invoke(cli_export.main, ["--formats", "web", "-o", str(tmp_path / "out")])
    assert result.exit_code == 4, result.output
    assert "npm is not installed" in result.stderr and "--web-runtime" in result.stderr
    fake = tmp_path / "fake.tgz"
    fake.write_bytes(b"not the package")
    with pytest.raises(WebRuntimeUnavailableError, match="SHA-512 differs from npm's integrity hash"):
        write_web_folder(verified_shipped_model().path, tmp_path / "web", fake)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_dermseg_serve_offers_the_page_cross_origin_isolated_and_only_its_files(web_folder: Path, browser: Any,
                                                                                  tmp_path: Path) -> None:
    from dermseg_deploy.cli.serve import local_page
    from dermseg_deploy.scale.serve_front import FrontServer, LocalPage, SegmentFront
    from dermseg_deploy.scale.serve_limits import ServeLimits

    async def unused(*args: Any) -> Any:
        raise AssertionError("the in-browser page must not call the service")

    assert "runs .onnx models" in local_page(tmp_path / "model.pt", tmp_path / "page").why
    local = local_page(verified_shipped_model().path, tmp_path / "page")
    assert local.folder is not None, local.why
    front = SegmentFront(unused, unused, ServeLimits(), 1, local)
    server = FrontServer(front, "127.0.0.1", 0).start()
    try:
        port = server.server.servers[0].sockets[0].getsockname()[1]
        base = f"http://127.0.0.1:{port}"
        _open(browser, f"{base}/local")  # redirected to /local/
        assert browser.execute_script("return self.crossOriginIsolated") is True
        assert browser.execute_script("return document.body.getAttribute('data-ready')") == "true", \
            browser.find_element("id", "error").text
        if (os.cpu_count() or 1) > 1:
            assert "threads (cross-origin isolated)" in browser.find_element("id", "settings").text
        got = _segment(browser, sample_image_paths()[0])
        assert "error" not in got and got["mask"].any(), got
        for path in ("/local/../pyproject.toml", "/local/%2e%2e/pyproject.toml", "/local/notes.txt"):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(base + path, timeout=10)
            assert refused.value.code == 404, path
    finally:
        server.stop()
    off = SegmentFront(unused, unused, ServeLimits(), 1, LocalPage(None, "it runs .onnx models"))
    server = FrontServer(off, "127.0.0.1", 0).start()
    try:
        port = server.server.servers[0].sockets[0].getsockname()[1]
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/local/", timeout=10)
        assert missing.value.code == 404 and b"it runs .onnx models" in missing.value.read()
    finally:
        server.stop()
