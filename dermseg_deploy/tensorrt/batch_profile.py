"""The optimisation profile for the batch dimension, and splitting batches that exceed it."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UserError


@dataclass(frozen=True)
class BatchProfile:
    """min <= opt <= max batch sizes the engine is built for; TensorRT tunes its kernels for `opt`."""

    min_batch: int = 1
    opt_batch: int = 4
    max_batch: int = 8

    def __post_init__(self) -> None:
        if not 1 <= self.min_batch <= self.opt_batch <= self.max_batch:
            raise UserError(
                f"batch profile must satisfy 1 <= min <= opt <= max, got min {self.min_batch}, "
                f"opt {self.opt_batch}, max {self.max_batch}"
            )

    def shapes(self, size_px: int) -> tuple[tuple[int, int, int, int], ...]:
        """(min, opt, max) input shapes for a square `size_px` input with 3 channels."""
        return tuple((batch, 3, size_px, size_px) for batch in (self.min_batch, self.opt_batch, self.max_batch))

    def to_dict(self) -> dict[str, int]:
        return {"min": self.min_batch, "opt": self.opt_batch, "max": self.max_batch}


def split_batch(count: int, max_batch: int) -> list[slice]:
    """Slices that cover `count` images in order, none longer than `max_batch`."""
    if max_batch < 1:
        raise ValueError(f"max_batch must be at least 1, got {max_batch}")
    return [slice(start, min(start + max_batch, count)) for start in range(0, count, max_batch)]


def padding_for_profile(count: int, min_batch: int, max_batch: int) -> int:
    """Images to add so that no chunk of `split_batch(count + padding, max_batch)` is below `min_batch`."""
    remainder = count % max_batch
    return min_batch - remainder if 0 < remainder < min_batch else 0
