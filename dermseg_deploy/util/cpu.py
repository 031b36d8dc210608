"""What this CPU can do: its instruction-set flags, and whether it has native BF16 units (the one function every BF16
decision asks)."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
BF16_FLAGS = ("amx_bf16", "avx512_bf16")
"""Either gives native BF16 arithmetic: AMX tiles (Intel Xeon 4th generation and later) or AVX-512 BF16 dot products
(also AMD Zen 4 and later)."""


@functools.cache
def cpuinfo_fields() -> dict[str, str]:
    """The first processor's fields in `/proc/cpuinfo` (empty where that is not readable, as on macOS)."""
    try:
        text = CPUINFO.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (empty where `/proc/cpuinfo` is not readable)."""
    return frozenset(cpuinfo_fields().get("flags", "").split())


def cpu_identity() -> tuple[str, int | None]:
    """The CPU's vendor (`GenuineIntel`, `AuthenticAMD`, ...; empty where unknown) and family number."""
    fields = cpuinfo_fields()
    family = fields.get("cpu family", "")
    return fields.get("vendor_id", ""), int(family) if family.isdigit() else None


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


INT8_UNITS = (("amx_int8", "AMX-INT8"), ("avx512_vnni", "AVX-512 VNNI"), ("avx_vnni", "AVX-VNNI"))
BF16_UNITS = (("amx_bf16", "AMX-BF16"), ("avx512_bf16", "AVX-512 BF16"))


def fastest_engine_line() -> str:
    """One line naming this CPU's matrix units and the fastest dermseg engine they give (set-up prints it)."""
    flags = cpu_flags()
    int8 = [name for flag, name in INT8_UNITS if flag in flags]
    bf16 = [name for flag, name in BF16_UNITS if flag in flags]
    units = ", ".join(int8 + bf16) or "no INT8 or BF16 dot-product units"
    if int8:
        engine = ("an INT8 OpenVINO IR (dermseg-export model.pt --formats int8 --calib DIR, then dermseg-run --engine "
                  "model.int8.xml)" + (", else BF16 (.xml, --precision auto)" if bf16 else ""))
    elif bf16:
        engine = "an OpenVINO IR in BF16 (dermseg-export model.pt --formats openvino; .xml runs BF16 by --precision auto)"
    else:
        engine = "an OpenVINO IR in FP32 (dermseg-export model.pt --formats openvino), or the ONNX file"
    return f"this CPU has {units}: the fastest CPU engine here is {engine}; pip install 'dermseg[openvino]' runs it"



def cpu_record() -> dict[str, str | int | None]:
    """What a training checkpoint records of the CPU it ran on: model name, vendor, family and model numbers, the
    BF16 units and the usable cores (empty strings and None where `/proc/cpuinfo` says nothing)."""
    fields = cpuinfo_fields()
    vendor, family = cpu_identity()
    model = fields.get("model", "")
    return {"name": fields.get("model name", ""), "vendor": vendor, "family": family,
            "model": int(model) if model.isdigit() else None, "bf16_units": bf16_units(), "cores": usable_cores()}


def describe_cpu_record(record: Mapping[str, object]) -> str:
    """`AMD EPYC (family 25 model 1, BF16 units: none, 2 cores)` for a `cpu_record()`."""
    name = record.get("name") or record.get("vendor") or "an unknown CPU"
    return (f"{name} (family {record.get('family')} model {record.get('model')}, BF16 units: "
            f"{record.get('bf16_units')}, {record.get('cores')} cores)")
