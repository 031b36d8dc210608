"""The one rule for network input sides: multiples of 32 (the encoder downsamples five times), at most 4096."""

from __future__ import annotations

from ..errors import UserError

SIZE_MULTIPLE = 32
MAX_SIZE_PX = 4096
"""The largest side dermseg runs: 4096 x 4096 is already 16x the paper's deployment size, and bounds the memory a
model file or a flag can make dermseg allocate."""
SIZE_RULE = f"must be a positive multiple of {SIZE_MULTIPLE}, at most {MAX_SIZE_PX}"


def is_valid_size(size_px: int) -> bool:
    """True for a positive multiple of 32 that is at most 4096."""
    return 0 < size_px <= MAX_SIZE_PX and size_px % SIZE_MULTIPLE == 0


def require_valid_size(size_px: int, label: str = "--size") -> int:
    """Return `size_px`, or raise UserError naming `label` when it breaks the size rule."""
    if not is_valid_size(size_px):
        raise UserError(f"{label} {size_px}: {SIZE_RULE}")
    return size_px
