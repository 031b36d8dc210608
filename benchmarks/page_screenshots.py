"""Screenshots of the two pages in headless Chromium, for the README: an evaluation report (`dermseg-eval --report`)
and `dermseg-serve`'s page after an upload.

usage: python benchmarks/page_screenshots.py --report REPORT_DIR --engine MODEL --image IMAGE --out DIR
Starts `dermseg-serve` on a free port (one replica), uploads IMAGE through the page's file input, and stops it.
"""

from __future__ import annotations

import argparse
import io
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from PIL import Image  # noqa: E402

from tests.browser import file_url, start_chromium, wait_for  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def page_screenshot(driver: object, path: Path, width: int, max_height: int) -> None:
    """The page from its top, at most `max_height` px of it, as a JPEG (small enough to commit)."""
    height = driver.execute_script("return document.documentElement.scrollHeight;")  # type: ignore[attr-defined]
    driver.set_window_size(width, min(int(height) + 200, max_height))  # type: ignore[attr-defined]
    png = driver.get_screenshot_as_png()  # type: ignore[attr-defined]
    with Image.open(io.BytesIO(png)) as picture:
        picture.convert("RGB").save(path, format="JPEG", quality=85)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", type=Path, required=True)
    parser.add_argument("--engine", type=Path, required=True)
    parser.add_argument("--image", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = subprocess.Popen([str(Path(sys.executable).with_name("dermseg-serve")), "--engine", str(args.engine),
                               "--port", str(port), "--replicas", "1", "--device", "cpu"])
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: _healthy(base), timeout_s=180, what="dermseg-serve")
        chromium = start_chromium()
        driver = next(chromium)
        try:
            driver.get(file_url(args.report / "index.html"))
            page_screenshot(driver, args.out / "report-page.jpg", 1280, 2400)
            driver.set_window_size(1000, 1000)
            driver.get(base + "/")
            wait_for(lambda: driver.execute_script("return document.body.getAttribute('data-ready');") == "true")
            driver.find_element("id", "file").send_keys(str(args.image.resolve()))
            wait_for(lambda: driver.execute_script("return document.body.getAttribute('data-state');") == "done")
            page_screenshot(driver, args.out / "serve-page.jpg", 1000, 1400)
        finally:
            chromium.close()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=120)
    print(f"wrote {args.out / 'report-page.jpg'} and {args.out / 'serve-page.jpg'}")
    return 0


def _healthy(base: str) -> bool:
    try:
        with urllib.request.urlopen(base + "/healthz", timeout=2) as response:
            return response.status == 200
    except OSError:
        time.sleep(0.5)
        return False


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
