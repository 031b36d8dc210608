"""How long each benchmark measurement runs (kept apart from the timing code, which needs torch)."""

from __future__ import annotations

from dataclasses import dataclass

MIN_PERCENTILE_SAMPLES = 20
"""Below this many samples, p90/p95/p99 are little more than the maximum: the report says so."""


@dataclass(frozen=True)
class BenchSettings:
    """A measurement runs at least `min_iterations` batches and `min_seconds`, unless `max_seconds` passes first
    (then with fewer samples, which the report flags)."""

    batch_size: int
    warmup_iterations: int = 2
    min_iterations: int = MIN_PERCENTILE_SAMPLES
    min_seconds: float = 3.0
    io_threads: int = 4
    max_seconds: float = 60.0

    def done(self, recorded: int, elapsed: float) -> bool:
        if recorded >= self.min_iterations and elapsed >= self.min_seconds:
            return True
        return recorded >= 1 and elapsed >= self.max_seconds
