"""What this CPU can do: its instruction-set flags, and whether it has native BF16 units (the one function every BF16
decision asks)."""

from __future__ import annotations

import functools
import os
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
BF16_FLAGS = ("amx_bf16", "avx512_bf16")
"""Either gives native BF16 arithmetic: AMX tiles (Intel Xeon 4th generation and later) or AVX-512 BF16 dot products
(also AMD Zen 4 and later)."""


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (`/proc/cpuinfo`; empty where that is not readable, as on macOS)."""
    try:
        text = CPUINFO.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


@functools.cache
def cpu_identity() -> tuple[str, int | None]:
    """The CPU's vendor (`GenuineIntel`, `AuthenticAMD`, ...; empty where unknown) and family number."""
    vendor, family = "", None
    try:
        text = CPUINFO.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return vendor, family
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "vendor_id" and not vendor:
            vendor = value.strip()
        elif key.strip() == "cpu family" and family is None and value.strip().isdigit():
            family = int(value.strip())
    return vendor, family


def native_bf16() -> bool:
    """True where the CPU computes BF16 natively (AMX or AVX-512 BF16); elsewhere BF16 would be emulated, slower than
    FP32. Tests replace this function to run both branches on any CPU."""
    return any(flag in cpu_flags() for flag in BF16_FLAGS)


def bf16_units() -> str:
    """The units that make BF16 native here, for the lines that announce a choice (`AMX`, `AVX-512 BF16`, or none)."""
    flags = cpu_flags()
    if "amx_bf16" in flags:
        return "AMX"
    if "avx512_bf16" in flags:
        return "AVX-512 BF16"
    return "none"


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1
