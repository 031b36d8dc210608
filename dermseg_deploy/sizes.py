"""The one rule for network input sides: positive multiples of 32 (the encoder downsamples five times)."""

from __future__ import annotations

from .errors import UserError

SIZE_MULTIPLE = 32


def is_valid_size(size_px: int) -> bool:
    """True for a positive multiple of 32."""
    return size_px > 0 and size_px % SIZE_MULTIPLE == 0


def require_valid_size(size_px: int, label: str = "--size") -> int:
    """Return `size_px`, or raise UserError naming `label` when it is not a positive multiple of 32."""
    if not is_valid_size(size_px):
        raise UserError(f"{label} {size_px}: must be a positive multiple of {SIZE_MULTIPLE}")
    return size_px
