"""What bounds `dermseg-serve`'s memory, on every process a request passes through.

    the front (the dermseg-serve process: an HTTP server of its own; Ray's HTTP proxy is not started, since in
    Ray 2.60 it reads a whole body into memory before anything can refuse it)
        a body over `max_body_bytes` is refused with 413: from its Content-Length before a byte of it is read, or
        once the bytes streamed in pass the limit; at most `max_in_flight` requests are held (their bodies at most
        `max_in_flight x max_body_bytes`), one more is answered 503 with Retry-After at once
    the object store
        bodies travel to the replicas as NumPy arrays, which Ray places in its shared-memory object store once and
        the replica reads without a copy: at most `max_in_flight x max_body_bytes` there
    the replicas
        each takes at most `max_ongoing` requests from the front (their bodies stay in the object store until they
        are decoded), and segments at most `decode_budget_bytes` at a time: an image's cost is its pixel count (from
        its header) times `DECODE_BYTES_PER_PIXEL` plus a copy of its bytes; a request whose image does not fit
        beside the others waits, up to `wait_s`, then gets 503 with Retry-After; one that cannot fit even alone
        gets 413

So the worst allowed load holds about `max_in_flight x max_body_bytes` in the front, as much in the object store, and
`decode_budget_bytes` per replica, plus what each process holds idle (figures: docs/guides/serve.md).
"""

from __future__ import annotations

import asyncio
import ctypes
from dataclasses import dataclass
from typing import Any

from ..errors import InputImageError, UserError

MB = 2**20
DECODE_BYTES_PER_PIXEL = 15
"""Peak bytes a replica holds per pixel of an image on its way through the host stages (Pillow's decoded image, its
RGB array, the displayed-size mask and its PNG encoding), rounded up from a measurement: a 10950 x 10950 PNG (120 M
pixels) through the shipped model raised the process's peak RSS by 14.0 bytes per pixel (a JPEG of the same size,
decoded at a reduced DCT scale, by 2.1: the estimate is the PNG's, so it is never low)."""
DEFAULT_MAX_BODY_MB = 64
DEFAULT_MAX_QUEUED = 16
DEFAULT_DECODE_BUDGET_MB = 2048
DEFAULT_WAIT_S = 30.0
RETRY_AFTER_S = 2
BUSY_KIND = "busy"
"""The error kind of a request that found no room in its replica's decode budget in time (HTTP 503)."""


@dataclass(frozen=True)
class ServeLimits:
    """The numbers of the module docstring; `max_ongoing` is per replica, `max_queued` the requests the front holds
    beyond those the replicas have taken."""

    max_body_bytes: int = DEFAULT_MAX_BODY_MB * MB
    max_queued: int = DEFAULT_MAX_QUEUED
    max_ongoing: int = 16
    decode_budget_bytes: int = DEFAULT_DECODE_BUDGET_MB * MB
    wait_s: float = DEFAULT_WAIT_S

    def __post_init__(self) -> None:
        if min(self.max_body_bytes, self.max_ongoing, self.decode_budget_bytes) < 1 or self.max_queued < 0:
            raise UserError("serve limits must be positive (the queue may be 0)")

    def max_in_flight(self, replicas: int) -> int:
        """Requests the front holds at once: those the replicas run or hold, and the queue."""
        return replicas * self.max_ongoing + self.max_queued

    def check_fits(self, max_pixels: int) -> None:
        """Refuse settings under which an image within the pixel limit could never be decoded."""
        if max_pixels * DECODE_BYTES_PER_PIXEL > self.decode_budget_bytes:
            raise UserError(f"--max-pixels {max_pixels} needs {max_pixels * DECODE_BYTES_PER_PIXEL / MB:.0f} MB to "
                            f"decode one image, over the decode budget of {self.decode_budget_bytes / MB:.0f} MB: "
                            "raise --decode-budget-mb or lower --max-pixels")

    def describe(self, replicas: int) -> str:
        """The worst-case memory these limits allow, for the start-up line."""
        front = self.max_in_flight(replicas) * self.max_body_bytes
        replica = self.max_ongoing * self.max_body_bytes + self.decode_budget_bytes
        return (f"bodies up to {self.max_body_bytes / MB:.0f} MB, {self.max_in_flight(replicas)} requests held at once "
                f"(at most {front / MB:.0f} MB of bodies in this process), per replica {self.max_ongoing} requests and "
                f"{self.decode_budget_bytes / MB:.0f} MB of decoded pixels (at most {replica / MB:.0f} MB)")


HEADER_BYTES = 2**20
"""Where an image's size is looked for: the first MiB (a JPEG's EXIF and other APP segments come before its size)."""


def decode_cost_bytes(data: Any, name: object, max_pixels: int) -> int:
    """What segmenting `data` (bytes, or a uint8 array: anything with the buffer protocol) will hold: its pixels
    (from the header in its first MiB) times `DECODE_BYTES_PER_PIXEL`, and a copy of its bytes. Bytes that are no
    image cost nothing (they fail at once); a header not found in the first MiB costs as much as `max_pixels`."""
    from ..core.decode import pixel_count
    from ..core.image_formats import UNREADABLE

    view = memoryview(data)
    try:
        pixels = pixel_count(bytes(view[:HEADER_BYTES]), name)
    except InputImageError as exc:
        if exc.reason == UNREADABLE or len(view) <= HEADER_BYTES:
            return 0  # no format of the list starts this way (each names itself in its first bytes): it fails at once
        pixels = max_pixels
    return pixels * DECODE_BYTES_PER_PIXEL + len(view)


class DecodeBudget:
    """Bytes of decoding in flight in one replica (asyncio, on the replica's event loop): `acquire` waits until a
    cost fits beside the others."""

    def __init__(self, capacity_bytes: int) -> None:
        self.capacity = capacity_bytes
        self.in_use = 0
        self._changed = asyncio.Condition()

    async def acquire(self, cost: int, timeout_s: float) -> bool:
        """Take `cost` bytes, waiting up to `timeout_s` for room; False if there was none in time."""
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: self.in_use + cost <= self.capacity), timeout_s)
            except asyncio.TimeoutError:
                return False
            self.in_use += cost
            return True

    async def release(self, cost: int) -> None:
        async with self._changed:
            self.in_use -= cost
            self._changed.notify_all()


MALLOC_ARENAS = 2
"""glibc's malloc keeps one arena per thread that allocates, and memory freed into one is not reused by another: a
server whose threads each handle large buffers grows past its working set (a replica decoding within a 70 MB
budget grew 122-165 MB without the cap, 85 MB with it; tests/test_serve_limits.py). Two arenas stop that."""


def cap_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas in this process (`mallopt(M_ARENA_MAX)`); False where the C library is not glibc.
    Processes started later take the cap from the environment variable MALLOC_ARENA_MAX instead."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_arena_max = -8
    return bool(libc.mallopt(m_arena_max, arenas) == 1)
