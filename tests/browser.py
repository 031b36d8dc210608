"""A real browser for page tests: Debian's headless Chromium driven by Selenium through Debian's chromedriver.

Where Chromium, its driver or Selenium is missing, the tests skip and say what to install; under CI (`CI=true`) they
fail instead, so the browser checks cannot silently vanish from a CI run. `scripts/setup.sh` installs both where apt
is available.
"""

from __future__ import annotations

import base64
import io
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

CHROMIUM_NAMES = ("chromium", "chromium-browser")
CHROMEDRIVER = "chromedriver"
INSTALL = "apt-get install chromium chromium-driver (scripts/setup.sh does it where apt is available) and pip install selenium"
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                  "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1280,1000")
"""Headless, as root, on a machine whose network is closed (the background-networking flags stop Chromium from
trying to reach Google's hosts at every start)."""


def missing_browser() -> str | None:
    """Why no browser test can run here, or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "Selenium is not installed"
    if not any(shutil.which(name) for name in CHROMIUM_NAMES):
        return "Chromium is not installed"
    if not shutil.which(CHROMEDRIVER):
        return "chromedriver is not installed"
    return None


def require_browser() -> None:
    """Skip (fail under CI) where the browser is missing."""
    why = missing_browser()
    if why is None:
        return
    message = f"{why}: the page tests need a real browser ({INSTALL})"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message}; under CI a missing browser is a failure, not a skip")
    pytest.skip(message)


def start_chromium(performance_log: bool = False) -> Iterator[Any]:
    """A headless Chromium (with its console log kept, and with `performance_log` its network events), quit at the
    end."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="dermseg-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = next(path for name in CHROMIUM_NAMES if (path := shutil.which(name)))
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", **({"performance": "ALL"} if performance_log else {})})
    driver = webdriver.Chrome(service=Service(executable_path=shutil.which(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def console_errors(driver: Any) -> list[str]:
    """The page's console messages at error level since the last call."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def wait_for(condition: Callable[[], Any], timeout_s: float = 60.0, what: str = "the page") -> Any:
    """Poll `condition` until it returns something true; fail naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.1)


def canvas_pixels(driver: Any, selector: str) -> np.ndarray:
    """The (H, W, 4) RGBA pixels of a canvas on the page, read back through a lossless PNG."""
    url = driver.execute_script(f"return document.querySelector({selector!r}).toDataURL('image/png');")
    data = base64.b64decode(url.split(",", 1)[1])
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGBA"))


def file_url(path: Path) -> str:
    return path.resolve().as_uri()


def network_requests(driver: Any) -> list[tuple[str, int | None]]:
    """(URL, HTTP status or None) of every request the page made since the last call, from the performance log.

    The browser's own pages (chrome://: its start page loads in the background, and no web page may load one) are
    left out."""
    import json

    sent: dict[str, str] = {}
    status: dict[str, int] = {}
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        params = message.get("params", {})
        if message.get("method") == "Network.requestWillBeSent":
            sent[params["requestId"]] = params["request"]["url"]
        elif message.get("method") == "Network.responseReceived":
            status[params["requestId"]] = int(params["response"]["status"])
    return [(url, status.get(request)) for request, url in sent.items() if not url.startswith("chrome://")]


def serve_folder(folder: Path, headers: dict[str, str] | None = None) -> tuple[Any, str]:
    """A static server for `folder` in a thread (`python -m http.server`, quiet), sending `headers` with every
    response: (the server, to shut down; its base URL)."""
    import functools
    import http.server
    import threading

    class Handler(http.server.SimpleHTTPRequestHandler):
        def end_headers(self) -> None:
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            super().end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"
