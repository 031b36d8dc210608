"""`dermseg-serve`: the core behind HTTP on Ray Serve, with dynamic batching.

    POST /segment[?format=json][&name=FILE]   image bytes -> the PNG mask at the image's displayed size, with the
                                              lesion fraction, the seconds and the ms per stage in X- headers
                                              (format=json: height, width, lesion fraction, seconds, stage_ms instead)
    GET  /healthz                             model, backend, precision, device, the mask settings and the replica's
                                              process id
    GET  /                                    a page to try it in a browser (`serve_page`)

A bad image is HTTP 400 with the text `dermseg-run` prints (`<name>: <reason>`), an image over the pixel limit
413; the core never raises for a bad image, so one bad request neither fails its batch nor kills the replica.
Imports Ray Serve: import this module only where Ray is installed (`pip install 'dermseg[ray]'`).
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass
from typing import Any

from ray import serve
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

from ..core.work_item import WorkItem
from ..errors import DermsegError, ImageTooLargeError, NonFiniteLogitsError
from ..files.outputs import encode_png
from ..segment.pipeline import RunOptions
from .segmenter_spec import SegmenterSpec
from .serve_page import PAGE

APP_NAME = "dermseg"
STATUS_BY_KIND = {ImageTooLargeError.kind: 413, NonFiniteLogitsError.kind: 500}
"""HTTP status of a failed image by its error kind; any other kind is the request's fault (400)."""


@dataclass(frozen=True)
class ServeSettings:
    """What every replica needs to open the model and batch requests."""

    model: SegmenterSpec
    max_batch_size: int = 8
    batch_wait_ms: float = 10.0


@dataclass(frozen=True)
class Outcome:
    """One request's result: the encoded mask, or why there is none."""

    png: bytes | None = None
    height: int = 0
    width: int = 0
    lesion_fraction: float | None = None
    seconds: float = 0.0
    error: str | None = None
    error_kind: str | None = None
    stage_ms: dict[str, float] | None = None


class SegmentationService:
    """A Serve replica: the model opened once; requests batched by `@serve.batch` and run through the core."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.segmenter = settings.model.open()
        batched: Any = self.segment_batch  # Serve's batch handler, with setters its type hints do not show
        batched.set_max_batch_size(settings.max_batch_size)
        batched.set_batch_wait_timeout_s(settings.batch_wait_ms / 1000.0)

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.01)
    async def segment_batch(self, requests: list[tuple[str, bytes]]) -> list[Outcome]:
        """Every request of the batch gets its own outcome; the work runs off the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self._segment, requests)

    def _segment(self, requests: list[tuple[str, bytes]]) -> list[Outcome]:
        items = [WorkItem(name, data=data) for name, data in requests]
        options = RunOptions(batch_size=len(items), io_threads=min(4, len(items)), keep_masks=True)
        outcomes = []
        for result in self.segmenter.segment_items(items, options):
            if result.mask is None:
                outcomes.append(Outcome(error=result.message, error_kind=result.error_kind, seconds=result.seconds))
                continue
            height, width = result.mask.shape
            png = encode_png(result.mask)
            stage_ms = {stage: round(1000 * value, 3) for stage, value in (result.stage_seconds or {}).items()}
            outcomes.append(Outcome(png, height, width, result.lesion_fraction, result.seconds, stage_ms=stage_ms))
        return outcomes

    def health(self) -> dict[str, Any]:
        backend = self.segmenter.backend
        masks = self.segmenter.mask_options
        return {"status": "ok", "model": str(backend.path), "backend": backend.name, "device": str(backend.device),
                "input_size_px": self.segmenter.metadata.size_px, "pid": os.getpid(), "precision": backend.arithmetic,
                "threshold": self.segmenter.metadata.threshold, "tta": masks.tta,
                "postprocess": ",".join(masks.postprocess) or "none", "max_pixels": self.settings.model.max_pixels}

    async def __call__(self, request: Request) -> Response:
        path = request.url.path.rstrip("/")
        if path.endswith("/healthz") and request.method == "GET":
            return JSONResponse(self.health())
        if path == request.scope.get("root_path", "").rstrip("/") and request.method == "GET":
            return HTMLResponse(PAGE)
        if not path.endswith("/segment"):
            return PlainTextResponse("not found: POST /segment, GET /healthz or GET / (a page)\n", status_code=404)
        if request.method != "POST":
            return PlainTextResponse("POST image bytes to /segment\n", status_code=405)
        name = request.query_params.get("name", "request")
        try:
            outcome = await self.segment_batch((name, await request.body()))
        except DermsegError as exc:  # the backend failed for the whole batch: the replica stays up
            return PlainTextResponse(f"error: {exc}\n", status_code=500)
        if outcome.error is not None:
            status = STATUS_BY_KIND.get(outcome.error_kind or "", 400)
            return PlainTextResponse(f"error: {outcome.error}\n", status_code=status)
        headers = {"X-Lesion-Fraction": f"{outcome.lesion_fraction:.6f}", "X-Replica-Pid": str(os.getpid()),
                   "X-Seconds": f"{outcome.seconds:.6f}", "X-Stage-Ms": json.dumps(outcome.stage_ms or {})}
        if request.query_params.get("format") == "json":
            body = {"height": outcome.height, "width": outcome.width, "lesion_fraction": outcome.lesion_fraction,
                    "seconds": outcome.seconds, "pid": os.getpid(), "stage_ms": outcome.stage_ms or {}}
            return Response(json.dumps(body), media_type="application/json", headers=headers)
        return Response(outcome.png, media_type="image/png", headers=headers)


def build_app(settings: ServeSettings, replicas: int, cpus_per_replica: float, gpus_per_replica: float,
              graceful_shutdown_timeout_s: float = 60.0) -> Any:
    """The Serve application: `replicas` copies of the service, each asking the cluster for its CPUs or GPU."""
    deployment = serve.deployment(
        name="segment", num_replicas=replicas,
        ray_actor_options={"num_cpus": cpus_per_replica, "num_gpus": gpus_per_replica},
        max_ongoing_requests=max(2 * settings.max_batch_size, 16),
        graceful_shutdown_timeout_s=graceful_shutdown_timeout_s,
    )(SegmentationService)
    return deployment.bind(settings)
