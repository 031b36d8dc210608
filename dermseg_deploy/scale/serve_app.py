"""`dermseg-serve`'s replicas: the core on Ray Serve, with dynamic batching, behind the bounded front
(`serve_front`), which speaks HTTP and calls them through a deployment handle:

    segment(name, data)   image bytes -> an Outcome: the PNG mask at the image's displayed size, its lesion
                          fraction, seconds and ms per stage; or the error, with its kind (the front's HTTP status)
    health()              model, backend, precision, device, the mask settings, the limits and the process id

A bad image is an Outcome with the text `dermseg-run` prints (`<name>: <reason>`); the core never raises for a bad
image (an unexpected exception is that image's `internal` failure), so one bad request neither fails its batch nor
kills the replica. Each replica decodes at most its decode budget of pixels at a time (`serve_limits`).
Imports Ray Serve: import this module only where Ray is installed (`pip install 'dermseg[ray]'`).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ray import serve

from ..core.work_item import WorkItem
from ..errors import INTERNAL_KIND, DermsegError, ImageTooLargeError, internal_reason
from ..files.outputs import encode_png
from ..segment.pipeline import RunOptions
from .segmenter_spec import SegmenterSpec
from .serve_limits import BUSY_KIND, MALLOC_ARENAS, MB, DecodeBudget, ServeLimits, decode_cost_bytes

APP_NAME = "dermseg"
REPLICA_ENV = {"MALLOC_ARENA_MAX": str(MALLOC_ARENAS)}
"""The replicas' environment: glibc's malloc arenas capped (`serve_limits.MALLOC_ARENAS`)."""


@dataclass(frozen=True)
class ServeSettings:
    """What every replica needs to open the model, batch requests and bound its memory."""

    model: SegmenterSpec
    max_batch_size: int = 8
    batch_wait_ms: float = 10.0
    limits: ServeLimits = field(default_factory=ServeLimits)


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
    pid: int = 0
    predicted_jaccard: float | None = None
    quality_calibrated: bool = False
    review: bool = False


class SegmentationService:
    """A Serve replica: the model opened once; requests batched by `@serve.batch` and run through the core."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.segmenter = settings.model.open()
        self.budget = DecodeBudget(settings.limits.decode_budget_bytes)
        batched: Any = self.segment_batch  # Serve's batch handler, with setters its type hints do not show
        batched.set_max_batch_size(settings.max_batch_size)
        batched.set_batch_wait_timeout_s(settings.batch_wait_ms / 1000.0)

    async def segment(self, name: str, data: bytes | np.ndarray) -> Outcome:
        """One request (its body as bytes, or a uint8 array read from the object store without a copy), within the
        replica's decode budget: it waits for room (503 after `wait_s`), and an image that could not fit even alone
        is refused (413)."""
        limits = self.settings.limits
        cost = decode_cost_bytes(data, name, self.settings.model.max_pixels)
        if cost > limits.decode_budget_bytes:
            return Outcome(error=f"{name}: needs {cost / MB:.0f} MB to decode, over this service's decode budget of "
                                 f"{limits.decode_budget_bytes / MB:.0f} MB", error_kind=ImageTooLargeError.kind,
                           pid=os.getpid())
        if not await self.budget.acquire(cost, limits.wait_s):
            return Outcome(error=f"{name}: the service is busy decoding other images; try again", error_kind=BUSY_KIND,
                           pid=os.getpid())
        try:
            return await self.segment_batch((name, data))
        finally:
            await self.budget.release(cost)

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.01)
    async def segment_batch(self, requests: list[tuple[str, bytes | np.ndarray]]) -> list[Outcome]:
        """Every request of the batch gets its own outcome; the work runs off the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self._segment, requests)

    def _segment(self, requests: list[tuple[str, bytes | np.ndarray]]) -> list[Outcome]:
        """The batch through the core; what fails for the whole batch (the backend) is every request's failure, each
        with the reason, and the replica stays up."""
        try:
            return self._segment_items(requests)
        except DermsegError as exc:
            return [Outcome(error=f"{name}: {exc}", error_kind=INTERNAL_KIND, pid=os.getpid()) for name, _ in requests]
        except Exception as exc:
            return [Outcome(error=f"{name}: {internal_reason(exc)}", error_kind=INTERNAL_KIND, pid=os.getpid())
                    for name, _ in requests]

    def _segment_items(self, requests: list[tuple[str, bytes | np.ndarray]]) -> list[Outcome]:
        items = [WorkItem(name, data=data if isinstance(data, bytes) else data.tobytes()) for name, data in requests]
        options = RunOptions(batch_size=len(items), io_threads=min(4, len(items)), keep_masks=True)
        outcomes = []
        for result in self.segmenter.segment_items(items, options):
            if result.mask is None:
                outcomes.append(Outcome(error=result.message, error_kind=result.error_kind, seconds=result.seconds,
                                        pid=os.getpid()))
                continue
            height, width = result.mask.shape
            png = encode_png(result.mask)
            stage_ms = {stage: round(1000 * value, 3) for stage, value in (result.stage_seconds or {}).items()}
            quality = result.quality
            outcomes.append(Outcome(png, height, width, result.lesion_fraction, result.seconds, stage_ms=stage_ms,
                                    pid=os.getpid(), predicted_jaccard=None if quality is None else quality.predicted_jaccard,
                                    quality_calibrated=quality is not None and quality.calibrated,
                                    review=quality is not None and quality.review))
        return outcomes

    def health(self) -> dict[str, Any]:
        backend = self.segmenter.backend
        masks = self.segmenter.mask_options
        limits = self.settings.limits
        return {"status": "ok", "model": str(backend.path), "backend": backend.name, "device": str(backend.device),
                "input_size_px": self.segmenter.metadata.size_px, "pid": os.getpid(), "precision": backend.arithmetic,
                "threshold": self.segmenter.metadata.threshold, "tta": masks.tta,
                "postprocess": ",".join(masks.postprocess) or "none", "max_pixels": self.settings.model.max_pixels,
                "max_body_mb": limits.max_body_bytes / MB, "decode_budget_mb": limits.decode_budget_bytes / MB,
                "predicted_jaccard": self.segmenter.quality.describe(), "review_below": self.segmenter.review_below}


def build_app(settings: ServeSettings, replicas: int, cpus_per_replica: float, gpus_per_replica: float,
              graceful_shutdown_timeout_s: float = 60.0) -> Any:
    """The Serve application: `replicas` copies of the service, each asking the cluster for its CPUs or GPU, each
    taking at most `limits.max_ongoing` requests. The handle's own queue is as long as the front's bound, so that
    the front is where requests are refused (a caller past that gets BackPressureError: 503)."""
    deployment = serve.deployment(
        name="segment", num_replicas=replicas,
        ray_actor_options={"num_cpus": cpus_per_replica, "num_gpus": gpus_per_replica,
                           "runtime_env": {"env_vars": REPLICA_ENV}},
        max_ongoing_requests=settings.limits.max_ongoing,
        max_queued_requests=settings.limits.max_in_flight(replicas),
        graceful_shutdown_timeout_s=graceful_shutdown_timeout_s,
    )(SegmentationService)
    return deployment.bind(settings)
