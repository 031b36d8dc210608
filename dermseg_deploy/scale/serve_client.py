"""A small client for `dermseg-serve` (standard library only, besides numpy and Pillow).

    from dermseg_deploy.scale.serve_client import ServeClient
    client = ServeClient("http://127.0.0.1:8000")
    mask = client.segment("lesion.jpg")          # (H, W) uint8 0/255, the image's displayed size
    info = client.segment_json("lesion.jpg")     # height, width, lesion_fraction, seconds
"""

from __future__ import annotations

import io
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..errors import BackendUnavailableError, ImageTooLargeError, InputImageError
from ..util.bounded_json import loads_bounded


class ServeClient:
    """POSTs image bytes to `/segment`; a 400 raises InputImageError, a 413 ImageTooLargeError, with the server's text."""

    def __init__(self, url: str = "http://127.0.0.1:8000", timeout_s: float = 120.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    def health(self) -> dict[str, Any]:
        with self._open(urllib.request.Request(f"{self.url}/healthz"), "service") as response:
            return dict(loads_bounded(response.read(), f"{self.url}/healthz"))

    def segment(self, image: str | Path | bytes, name: str | None = None) -> np.ndarray:
        """The mask of one image (a path, or the bytes of an image file)."""
        body, label = self._payload(image, name)
        with self._post(body, label, {}) as response:
            with Image.open(io.BytesIO(response.read()), formats=("PNG",)) as mask:
                return np.asarray(mask).copy()

    def segment_json(self, image: str | Path | bytes, name: str | None = None) -> dict[str, Any]:
        body, label = self._payload(image, name)
        with self._post(body, label, {"format": "json"}) as response:
            return dict(loads_bounded(response.read(), f"{self.url}/segment"))

    @staticmethod
    def _payload(image: str | Path | bytes, name: str | None) -> tuple[bytes, str]:
        if isinstance(image, bytes):
            return image, name or "request"
        path = Path(image)
        return path.read_bytes(), name or path.name

    def _post(self, body: bytes, name: str, query: dict[str, str]) -> Any:
        params = urllib.parse.urlencode({"name": name, **query})
        request = urllib.request.Request(f"{self.url}/segment?{params}", data=body, method="POST",
                                         headers={"Content-Type": "application/octet-stream"})
        return self._open(request, name)

    def _open(self, request: urllib.request.Request, name: str) -> Any:
        try:
            return urllib.request.urlopen(request, timeout=self.timeout_s)
        except urllib.error.HTTPError as exc:
            text = exc.read().decode("utf-8", "replace").strip().removeprefix("error: ")
            reason = text.split(": ", 1)[1] if text.startswith(f"{name}: ") else text
            if exc.code == 413:
                raise ImageTooLargeError(name, reason) from exc
            if exc.code == 400:
                raise InputImageError(name, reason) from exc
            raise BackendUnavailableError(f"{self.url}: HTTP {exc.code}: {text}") from exc
        except urllib.error.URLError as exc:
            raise BackendUnavailableError(f"{self.url}: cannot reach dermseg-serve ({exc.reason})") from exc
