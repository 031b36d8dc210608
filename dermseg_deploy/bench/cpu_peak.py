"""A labelled estimate of this CPU's peak arithmetic, for the bench's share-of-peak column on the CPU.

    peak = usable cores x clock x operations per cycle per core of the unit the engine's precision runs on

The clock is the highest of sysfs's `cpuinfo_max_freq` and `/proc/cpuinfo`'s "cpu MHz" (a VM may show only the
nominal clock); operations per cycle per core (a multiply-add counts 2) are Intel's figures for its matrix and vector
units: AMX-INT8 2048, AMX-BF16 1024, AVX-512 VNNI (INT8) 256, AVX-512 BF16 128, AVX-512 FP32 FMA 64 (two FMA
units), AVX2 FP32 FMA 32. AMD's Zen 4 (family 0x19 with AVX-512) runs each 512-bit instruction on 256-bit units in
two halves, so its AVX-512 figures are half of Intel's (VNNI 128, BF16 64, FP32 32); Zen 5 (family 0x1A) has full
512-bit units. An estimate, not a measurement: turbo, thermal limits and memory bandwidth move the real ceiling.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..util.cpu import cpu_flags, cpu_identity, usable_cores

MAX_FREQ = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
OPS_PER_CYCLE = (
    ("int8", "amx_int8", 2048, "AMX-INT8"),
    ("int8", "avx512_vnni", 256, "AVX-512 VNNI"),
    ("bf16", "amx_bf16", 1024, "AMX-BF16"),
    ("bf16", "avx512_bf16", 128, "AVX-512 BF16"),
    ("fp32", "avx512f", 64, "AVX-512 FMA"),
    ("fp32", "avx2", 32, "AVX2 FMA"),
)
"""(precision, the flag that gives the unit, operations per cycle per core, the unit's name), best unit first."""


@dataclass(frozen=True)
class CpuPeak:
    gflops: float
    how: str
    """How it was computed, for the report."""


def max_clock_readable() -> bool:
    """Whether cpufreq's maximum clock is readable (a VM often shows only /proc/cpuinfo's nominal clock)."""
    return MAX_FREQ.is_file()


def clock_ghz() -> float | None:
    """The CPU's highest clock this machine reports, in GHz (None where it reports none)."""
    candidates = []
    try:
        candidates.append(int(MAX_FREQ.read_text().strip()) / 1e6)
    except (OSError, ValueError):
        pass
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.lower().startswith("cpu mhz"):
                candidates.append(float(line.split(":", 1)[1]) / 1000)
    except (OSError, ValueError):
        pass
    return max(candidates) if candidates else None


def cpu_peak(precision: str) -> CpuPeak | None:
    """The estimated peak for `precision` (fp32, bf16, int8) on the best unit this CPU has, or None when the clock or
    the unit is unknown."""
    ghz = clock_ghz()
    flags = cpu_flags()
    half_width = avx512_on_half_width_units()
    for name, flag, ops, unit in OPS_PER_CYCLE:
        if name == precision and flag in flags and ghz is not None:
            cores = usable_cores()
            if half_width and flag.startswith("avx512"):
                ops, unit = ops // 2, f"{unit} on 256-bit units, AMD Zen 4"
            clock = "" if max_clock_readable() else (" (the clock /proc/cpuinfo reports; cpufreq's maximum is not "
                                                     "readable here: a core boosting above it can pass 100%)")
            return CpuPeak(cores * ghz * ops,
                           f"{cores} cores x {ghz:.2f} GHz x {ops} ops/cycle ({unit}), an estimate{clock}")
    return None


def avx512_on_half_width_units() -> bool:
    """True on AMD Zen 4 (family 0x19 with AVX-512), which splits each 512-bit instruction into two 256-bit halves."""
    vendor, family = cpu_identity()
    return vendor == "AuthenticAMD" and family == 0x19
