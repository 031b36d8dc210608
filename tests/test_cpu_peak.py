"""The bench's labelled estimate of the CPU's peak: the unit each precision runs on, by vendor and generation."""

from __future__ import annotations

import pytest

from dermseg_deploy.bench import cpu_peak
from dermseg_deploy.util import cpu


@pytest.mark.parametrize(("vendor", "family", "flags", "precision", "ops", "unit"), [
    ("GenuineIntel", 6, {"amx_bf16", "amx_int8", "avx512_bf16", "avx512_vnni", "avx512f"}, "bf16", 1024, "AMX-BF16"),
    ("GenuineIntel", 6, {"amx_bf16", "amx_int8", "avx512_bf16", "avx512_vnni", "avx512f"}, "int8", 2048, "AMX-INT8"),
    ("GenuineIntel", 6, {"avx512_bf16", "avx512_vnni", "avx512f"}, "bf16", 128, "AVX-512 BF16"),
    ("AuthenticAMD", 0x19, {"avx512_bf16", "avx512_vnni", "avx512f", "avx2"}, "bf16", 64, "AVX-512 BF16 on 256-bit"),
    ("AuthenticAMD", 0x19, {"avx512_bf16", "avx512_vnni", "avx512f", "avx2"}, "int8", 128, "AVX-512 VNNI on 256-bit"),
    ("AuthenticAMD", 0x19, {"avx512_bf16", "avx512_vnni", "avx512f", "avx2"}, "fp32", 32, "AVX-512 FMA on 256-bit"),
    ("AuthenticAMD", 0x1A, {"avx512_bf16", "avx512_vnni", "avx512f"}, "bf16", 128, "AVX-512 BF16"),
    ("AuthenticAMD", 0x17, {"avx2"}, "fp32", 32, "AVX2 FMA"),
])
def test_the_peak_counts_the_units_of_the_cpu_it_runs_on(monkeypatch: pytest.MonkeyPatch, vendor: str, family: int,
                                                         flags: set[str], precision: str, ops: int, unit: str) -> None:
    monkeypatch.setattr(cpu_peak, "cpu_flags", lambda: frozenset(flags))
    monkeypatch.setattr(cpu_peak, "cpu_identity", lambda: (vendor, family))
    monkeypatch.setattr(cpu_peak, "usable_cores", lambda: 2)
    monkeypatch.setattr(cpu_peak, "clock_ghz", lambda: 2.5)
    monkeypatch.setattr(cpu_peak, "max_clock_readable", lambda: True)
    peak = cpu_peak.cpu_peak(precision)
    assert peak is not None and peak.gflops == pytest.approx(2 * 2.5 * ops)
    assert f"x {ops} ops/cycle ({unit}" in peak.how and "an estimate" in peak.how


def test_a_nominal_clock_is_said_to_be_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu_peak, "cpu_flags", lambda: frozenset({"avx2"}))
    monkeypatch.setattr(cpu_peak, "clock_ghz", lambda: 2.5)
    monkeypatch.setattr(cpu_peak, "max_clock_readable", lambda: False)
    peak = cpu_peak.cpu_peak("fp32")
    assert peak is not None and "can pass 100%" in peak.how


def test_a_precision_without_a_unit_has_no_peak(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu_peak, "cpu_flags", lambda: frozenset({"avx2"}))
    assert cpu_peak.cpu_peak("bf16") is None


@pytest.mark.skipif(not cpu.CPUINFO.is_file(), reason="no /proc/cpuinfo on this system")
def test_this_cpu_is_read_from_proc_cpuinfo() -> None:
    vendor, family = cpu.cpu_identity()
    assert vendor in cpu.CPUINFO.read_text() and family is not None and family > 0


@pytest.mark.parametrize(("flags", "said"), [
    ({"amx_int8", "amx_bf16", "avx512_vnni", "avx512_bf16"}, "AMX-INT8, AVX-512 VNNI, AMX-BF16, AVX-512 BF16: the fastest "
                                                              "CPU engine here is an INT8 OpenVINO IR"),
    ({"avx512_bf16"}, "AVX-512 BF16: the fastest CPU engine here is an OpenVINO IR in BF16"),
    ({"avx2"}, "no INT8 or BF16 dot-product units: the fastest CPU engine here is an OpenVINO IR in FP32"),
])
def test_set_up_names_the_fastest_engine_of_the_cpu(monkeypatch: pytest.MonkeyPatch, flags: set[str], said: str) -> None:
    monkeypatch.setattr(cpu, "cpu_flags", lambda: frozenset(flags))
    assert said in cpu.fastest_engine_line()
