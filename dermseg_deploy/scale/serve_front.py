"""`dermseg-serve`'s HTTP front: a small bounded server in the dermseg-serve process that calls the replicas through a
deployment handle (Ray's own HTTP proxy is not started: in Ray 2.60 it reads a whole body before anything sees it).

    POST /segment[?format=json][&name=FILE]   image bytes -> the PNG mask at the image's displayed size, with the
                                              lesion fraction, the seconds, the ms per stage and the predicted Jaccard
                                              (and whether to review the mask) in X- headers (format=json: the same
                                              in JSON, with the height and width)
    GET  /healthz                             model, backend, precision, device, mask settings, limits, replica pid
    GET  /                                    a page to try it in a browser (`serve_page`)
    GET  /local/                              the page that segments in the browser itself, nothing uploaded
                                              (`export.web_folder`, for an .onnx model), cross-origin isolated so
                                              that its WebAssembly runs on several threads

Answers: 400 for a bad image (the text `dermseg-run` prints); 413 for a body over the limit (`serve_limits`: from its
Content-Length before reading, or while it streams in) or an image over the pixel limit or the decode budget; 503 with
Retry-After when the front holds its most requests, when the replicas' queue is full, or when a replica found no room
to decode in time; 500 when the model failed (NaN logits, a backend error) or dermseg hit a bug on that image.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from ..errors import INTERNAL_KIND, ImageTooLargeError, NonFiniteLogitsError, UserError
from .serve_limits import BUSY_KIND, MB, RETRY_AFTER_S, ServeLimits
from .serve_page import PAGE

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

STATUS_BY_KIND = {ImageTooLargeError.kind: 413, NonFiniteLogitsError.kind: 500, INTERNAL_KIND: 500, BUSY_KIND: 503}
"""HTTP status of a failed image by its error kind; any other kind is the request's fault (400)."""
BODY_TIMEOUT_S = 120.0
"""A body that has not arrived whole in this time is refused (408): a slow sender cannot hold a slot for ever."""


class _Refused(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status, self.text = status, text


@dataclass
class FrontState:
    """What the front counts: requests held now (bodies in memory) and the most held at once."""

    held: int = 0
    peak_held: int = 0


class SegmentFront:
    """The ASGI application. `segment(name, body)` and `health()` are awaitables that reach a replica (a deployment
    handle's methods, in `dermseg-serve`)."""

    def __init__(self, segment: Callable[[str, bytearray], Awaitable[Any]], health: Callable[[], Awaitable[dict[str, Any]]],
                 limits: ServeLimits, replicas: int, local: LocalPage | None = None) -> None:
        self.segment, self.health = segment, health
        self.limits, self.max_held = limits, limits.max_in_flight(replicas)
        self.state = FrontState()
        self.local = local or LocalPage(None, "not set up")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return
        if scope["type"] != "http":
            return
        path, method = scope["path"].rstrip("/"), scope["method"]
        if path == "" and method == "GET":
            await _answer(send, 200, PAGE.encode(), "text/html; charset=utf-8")
        elif path == "/healthz" and method == "GET":
            await self._health(send)
        elif path == "/local" and method == "GET":
            await self._local(scope["path"], send)
        elif path.startswith("/local/") and method == "GET":
            await self._local(scope["path"], send)
        elif path == "/segment":
            if method != "POST":
                await _answer(send, 405, b"POST image bytes to /segment\n")
            else:
                await self._segment(scope, receive, send)
        else:
            await _answer(send, 404, b"not found: POST /segment, GET /healthz or GET / (a page)\n")

    async def _local(self, raw_path: str, send: Send) -> None:
        """A file of the local page's folder: only those its manifest lists (no other path is ever opened)."""
        if raw_path == "/local":
            await _answer(send, 308, b"", headers={"location": "/local/"})
            return
        if self.local.folder is None:
            await _answer(send, 404, f"the in-browser page is not available: {self.local.why}\n".encode())
            return
        name = raw_path[len("/local/"):] or "index.html"
        if name not in self.local.files:
            await _answer(send, 404, b"not found\n")
            return
        body = (self.local.folder / name).read_bytes()
        await _answer(send, 200, body, _content_type(name), ISOLATION_HEADERS)

    async def _health(self, send: Send) -> None:
        try:
            health = dict(await self.health())
        except Exception as exc:  # no replica answered: the service is not ready
            await _answer(send, 503, f"error: no replica is ready ({type(exc).__name__})\n".encode(),
                          headers={"retry-after": str(RETRY_AFTER_S)})
            return
        health |= {"max_requests_held": self.max_held, "requests_held": self.state.held}
        await _answer(send, 200, json.dumps(health).encode(), "application/json")

    async def _segment(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.state.held >= self.max_held:
            await _answer(send, 503, f"error: the service holds its most requests ({self.max_held}); try again\n"
                          .encode(), headers={"retry-after": str(RETRY_AFTER_S)})
            return
        self.state.held += 1
        self.state.peak_held = max(self.state.peak_held, self.state.held)
        try:
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            name = query.get("name", ["request"])[0]
            try:
                body = await self._body(scope, receive)
                outcome = await self.segment(name, body)
            except _Refused as refused:
                await _answer(send, refused.status, f"error: {refused.text}\n".encode(),
                              headers={"retry-after": str(RETRY_AFTER_S)} if refused.status == 503 else None)
                return
            await _outcome_answer(send, outcome, query.get("format", [""])[0] == "json")
        finally:
            self.state.held -= 1

    async def _body(self, scope: Scope, receive: Receive) -> bytearray:
        """The whole body, in one buffer (of its Content-Length, where given: no copy as it grows), refused (413)
        from its Content-Length before reading, or as soon as the bytes read pass the limit; refused (408) if it
        does not arrive in time."""
        limit = self.limits.max_body_bytes
        declared = dict(scope.get("headers") or []).get(b"content-length")
        length = None
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                raise _Refused(400, "Content-Length is not a number") from None
            if length > limit:
                raise _Refused(413, f"the body has {length} bytes, over the limit of {limit} ({limit / MB:.0f} MB)")
        body = bytearray(length) if length is not None else bytearray()
        size, deadline = 0, time.monotonic() + BODY_TIMEOUT_S
        while True:
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                raise _Refused(408, f"the body did not arrive within {BODY_TIMEOUT_S:.0f} s") from None
            if message["type"] == "http.disconnect":
                raise _Refused(400, "the client went away")
            chunk = message.get("body", b"")
            if size + len(chunk) > (limit if length is None else length):
                raise _Refused(413, f"the body is over the limit of {limit} bytes ({limit / MB:.0f} MB)"
                               if length is None else f"the body is longer than its Content-Length of {length}")
            if length is None:
                body += chunk
            else:
                body[size : size + len(chunk)] = chunk
            size += len(chunk)
            if not message.get("more_body", False):
                return body if length is None or size == length else body[:size]


ISOLATION_HEADERS = {"cross-origin-opener-policy": "same-origin", "cross-origin-embedder-policy": "require-corp",
                     "cross-origin-resource-policy": "same-origin"}
"""Served with the local page's files: a cross-origin isolated page may run WebAssembly on several threads."""
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript", ".mjs": "text/javascript",
                 ".wasm": "application/wasm", ".json": "application/json", ".onnx": "application/octet-stream",
                 ".txt": "text/plain; charset=utf-8"}


def _content_type(name: str) -> str:
    return CONTENT_TYPES.get(Path(name).suffix, "application/octet-stream")


@dataclass(frozen=True)
class LocalPage:
    """The folder `dermseg-export --formats web` made for the served model, and the files its manifest lists; or
    why there is none (`folder` None)."""

    folder: Path | None
    why: str = ""
    files: frozenset[str] = frozenset()


async def _answer(send: Send, status: int, body: bytes, media_type: str = "text/plain; charset=utf-8",
                  headers: dict[str, str] | None = None) -> None:
    pairs = [(b"content-type", media_type.encode()), (b"content-length", str(len(body)).encode())]
    pairs += [(key.encode(), value.encode()) for key, value in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": pairs})
    await send({"type": "http.response.body", "body": body})


async def _outcome_answer(send: Send, outcome: Any, as_json: bool) -> None:
    if outcome.error is not None:
        status = STATUS_BY_KIND.get(outcome.error_kind or "", 400)
        await _answer(send, status, f"error: {outcome.error}\n".encode("utf-8", "backslashreplace"),
                      headers={"retry-after": str(RETRY_AFTER_S)} if status == 503 else None)
        return
    headers = {"x-lesion-fraction": f"{outcome.lesion_fraction:.6f}", "x-replica-pid": str(outcome.pid),
               "x-seconds": f"{outcome.seconds:.6f}", "x-stage-ms": json.dumps(outcome.stage_ms or {})}
    if outcome.predicted_jaccard is not None:
        headers |= {"x-predicted-jaccard": f"{outcome.predicted_jaccard:.4f}",
                    "x-predicted-jaccard-calibrated": "yes" if outcome.quality_calibrated else "no",
                    "x-review": "yes" if outcome.review else "no"}
    if as_json:
        body = {"height": outcome.height, "width": outcome.width, "lesion_fraction": outcome.lesion_fraction,
                "seconds": outcome.seconds, "pid": outcome.pid, "stage_ms": outcome.stage_ms or {},
                "predicted_jaccard": outcome.predicted_jaccard, "predicted_jaccard_calibrated": outcome.quality_calibrated,
                "review": outcome.review}
        await _answer(send, 200, json.dumps(body).encode(), "application/json", headers)
    else:
        await _answer(send, 200, outcome.png, "image/png", headers)


def handle_calls(handle: Any) -> tuple[Callable[[str, bytearray], Awaitable[Any]],
                                       Callable[[], Awaitable[dict[str, Any]]]]:
    """`segment` and `health` through a Serve deployment handle, from any event loop; a full replica queue
    (BackPressureError) is a 503."""
    from ray.serve.exceptions import BackPressureError

    async def segment(name: str, body: bytes | bytearray) -> Any:
        import numpy as np

        response = handle.segment.remote(name, np.frombuffer(body, dtype=np.uint8))  # to the object store, once
        try:
            return await asyncio.to_thread(response.result)
        except BackPressureError:
            raise _Refused(503, "every replica's queue is full; try again") from None

    async def health() -> dict[str, Any]:
        return dict(await asyncio.to_thread(handle.health.remote().result, timeout_s=30))

    return segment, health


class FrontServer:
    """The front on `host:port` (uvicorn, in a thread of this process); `stop()` lets the requests in flight end."""

    def __init__(self, app: SegmentFront, host: str, port: int) -> None:
        import uvicorn

        config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off",
                                timeout_graceful_shutdown=60, access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="dermseg-front", daemon=True)

    def start(self, timeout_s: float = 30.0) -> FrontServer:
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        config = self.server.config
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise UserError(f"cannot listen on {config.host}:{config.port} (taken, or not this machine's "
                                "address); choose another --port or --host")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=90)


@contextlib.contextmanager
def serving(settings: Any, replicas: int, cpus_per_replica: float, gpus_per_replica: float, host: str, port: int,
            name: str = "dermseg", local: LocalPage | None = None) -> Iterator[FrontServer]:
    """`settings`' application on the Ray cluster this process is connected to (no Ray HTTP proxy), behind the
    front on `host:port`; leaving the block stops the front (its requests answered first), then deletes the
    application (its replicas finish theirs). What dermseg-serve runs, and the tests and benchmarks with it."""
    from ray import serve

    from .serve_app import build_app

    serve.start(proxy_location="Disabled")
    handle = serve.run(build_app(settings, replicas, cpus_per_replica, gpus_per_replica), name=name, route_prefix=None)
    try:
        front = FrontServer(SegmentFront(*handle_calls(handle), settings.limits, replicas, local), host, port).start()
        try:
            yield front
        finally:
            front.stop()
    finally:
        serve.delete(name)
