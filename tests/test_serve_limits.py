"""`dermseg-serve`'s bounds, on every process a request passes through: bodies over the limit refused from their
Content-Length before they are read (and while they stream), a front that holds a bounded number of requests, a
replica that decodes within its budget (waiting, then 503 with Retry-After; 413 for an image that cannot fit), and
a batch in which one bad request harms no other."""

from __future__ import annotations

import http.client
import io
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pytest
from PIL import Image

from dermseg_deploy.samples import sample_image_paths
from dermseg_deploy.scale.serve_client import ServeClient
from dermseg_deploy.scale.serve_limits import DECODE_BYTES_PER_PIXEL, ServeLimits, decode_cost_bytes

from .conftest import SERVE_MAX_BODY_BYTES, served_application, served_model_spec

pytestmark = [pytest.mark.ray, pytest.mark.slow]
MB = 2**20


def _post(url: str, body: bytes | Iterator[bytes] | None, headers: dict[str, str] | None = None,
          name: str = "x") -> tuple[int, dict[str, str], bytes, float]:
    """POST to /segment with http.client (a body of None sends only the headers): status, headers, body, seconds."""
    parsed = urlparse(url)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=120)
    start = time.monotonic()
    try:
        connection.putrequest("POST", f"/segment?name={name}")
        for key, value in (headers or {}).items():
            connection.putheader(key, value)
        if isinstance(body, bytes):
            connection.putheader("Content-Length", str(len(body)))
        elif body is not None:
            connection.putheader("Transfer-Encoding", "chunked")
        connection.endheaders()
        try:
            if isinstance(body, bytes):
                connection.send(body)
            elif body is not None:
                for chunk in body:
                    connection.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                connection.send(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before the whole body was sent: what a limit should do
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read(), time.monotonic() - start
    finally:
        connection.close()


def _png(side: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(side).integers(0, 255, (64, 64, 3), dtype=np.uint8)).resize(
        (side, side)).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def test_a_body_over_the_limit_is_refused_before_it_is_read_and_while_it_streams(served: ServeClient) -> None:
    status, _, text, seconds = _post(served.url, None, {"Content-Length": str(2**30)})  # 1 GB claimed, none sent
    assert status == 413 and b"over the limit of 4194304" in text and seconds < 10
    chunks = (b"\0" * MB for _ in range(64))  # 64 MB streamed without a length: refused once 4 MB are in
    status, _, text, _ = _post(served.url, chunks)
    assert status == 413 and b"over the limit" in text
    status, _, text, _ = _post(served.url, b"\0" * (SERVE_MAX_BODY_BYTES - 1), name="zeros.jpg")  # within: read, 400
    assert status == 400 and b"zeros.jpg: is not an image" in text
    assert served.health()["status"] == "ok"


def _peak_rss(pid: int) -> int:
    return int(re.search(r"VmHWM:\s+(\d+)", Path(f"/proc/{pid}/status").read_text()).group(1)) * 1024  # type: ignore[union-attr]


def test_the_decode_budget_holds_under_concurrent_worst_requests(ray_session: Any, onnx_path: Path) -> None:
    image = _png(1800)  # 3.2 M pixels: 53 MB of decoding each; the budget holds one at a time
    cost = decode_cost_bytes(image, "x", 10_000_000)
    assert cost == 1800 * 1800 * DECODE_BYTES_PER_PIXEL + len(image)
    limits = ServeLimits(max_body_bytes=16 * MB, max_queued=16, max_ongoing=8, decode_budget_bytes=int(1.5 * cost),
                         wait_s=120)
    with served_application(served_model_spec(onnx_path, max_pixels=10_000_000), "dermseg-budget", limits=limits,
                            max_batch_size=8, batch_wait_ms=50) as url:
        client = ServeClient(url)
        pid = int(client.health()["pid"])
        client.segment(sample_image_paths()[0])
        before = _peak_rss(pid)
        with ThreadPoolExecutor(8) as pool:  # 8 at once: unbounded, a batch of 8 would decode 390 MB together
            answers = list(pool.map(lambda _: _post(url, image), range(8)))
        assert [status for status, *_ in answers] == [200] * 8
        grown = _peak_rss(pid) - before  # the budget, the bodies the replica holds, and some slack; unbounded: 390 MB
        bound = limits.decode_budget_bytes + limits.max_ongoing * len(image) + 32 * MB
        assert grown < bound, f"peak RSS grew {grown / MB:.0f} MB, over {bound / MB:.0f} MB"
        too_big = _png(2400)  # 5.8 M pixels: within --max-pixels, but 88 MB of decoding, over the 76 MB budget alone
        status, _, text, _ = _post(url, too_big, name="big.png")
        needs = decode_cost_bytes(too_big, "x", 10_000_000) / MB
        assert status == 413 and f"big.png: needs {needs:.0f} MB to decode, over this".encode() in text


def test_a_full_front_and_a_busy_replica_answer_503_with_retry_after(ray_session: Any, onnx_path: Path) -> None:
    image = _png(1000)
    limits = ServeLimits(max_body_bytes=8 * MB, max_queued=2, max_ongoing=2,
                         decode_budget_bytes=decode_cost_bytes(image, "x", 10_000_000), wait_s=0.3)
    with served_application(served_model_spec(onnx_path), "dermseg-busy", limits=limits, max_batch_size=2,
                            batch_wait_ms=1500) as url:  # a lone request holds the budget while its batch waits
        ServeClient(url).health()
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: _post(url, image), range(8)))
    statuses = sorted(status for status, *_ in answers)
    assert statuses.count(200) >= 1 and statuses.count(503) >= 5, statuses
    for status, headers, text, _ in answers:
        if status == 503:
            assert headers.get("retry-after") == "2" and (b"busy" in text or b"holds its most requests" in text)
    held = [text for status, _, text, _ in answers if b"holds its most requests (4)" in text]
    assert held, "the front (4 requests: 1 replica x 2 + 2 queued) should have refused some at once"


def test_one_bad_request_in_a_batch_harms_no_other(served: ServeClient) -> None:
    bodies = [sample_image_paths()[0].read_bytes(), b"%!PS-Adobe-3.0\nshowpage\n", sample_image_paths()[1].read_bytes(),
              b"", sample_image_paths()[2].read_bytes()]
    with ThreadPoolExecutor(len(bodies)) as pool:
        answers = list(pool.map(lambda body: _post(served.url, body, name="item.jpg"), bodies))
    assert [status for status, *_ in answers] == [200, 400, 200, 400, 200]
