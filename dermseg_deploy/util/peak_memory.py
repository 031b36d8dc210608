"""This process's peak resident memory, per step: Linux's VmHWM, which writing 5 to /proc/self/clear_refs resets to
the current resident size (so that each step reports its own peak). None where /proc is not there."""

from __future__ import annotations

import re
from pathlib import Path

GIB = 2**30


def peak_rss_gib() -> float | None:
    """The resident memory's high-water mark since the last reset (or the process's start), in GiB."""
    try:
        match = re.search(r"VmHWM:\s+(\d+)", Path("/proc/self/status").read_text())
    except OSError:
        return None
    return int(match.group(1)) * 1024 / GIB if match else None


def reset_peak_rss() -> bool:
    """Start a new high-water mark at the current resident size; False where the kernel does not allow it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True
