"""Benchmark output: a readable table and JSON for machines (the plot is `plot.py`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..util.atomic import atomic_write_bytes
from .measure import STAGES, BenchResult


def format_table(results: list[BenchResult], on_gpu: bool = True) -> str:
    """One row per engine and batch size: stage medians, inference and end-to-end rates, achieved arithmetic and its
    share of the peak, mask IoU (TFLOP/s on a GPU, GFLOP/s on the CPU)."""
    unit, scale = ("TFLOP/s", 1.0) if on_gpu else ("GFLOP/s", 1000.0)
    header = ["engine", "batch", *[f"{s} ms" for s in STAGES], "infer p99 ms", "infer img/s", "e2e img/s", unit,
              "% FP16 peak" if on_gpu else "% CPU peak", "IoU vs ref"]
    rows = [header]
    for r in results:
        medians = [f"{r.stage_ms[s].get('median', float('nan')):.2f}" for s in STAGES]
        iou = "-" if r.mean_iou_vs_reference is None else f"{r.mean_iou_vs_reference:.4f}"
        tflops = "-" if r.achieved_tflops is None else f"{r.achieved_tflops * scale:.2f}"
        share = "-" if r.peak_share is None else f"{100 * r.peak_share:.1f}"
        rows.append([r.label, str(r.batch_size), *medians, f"{r.stage_ms['inference'].get('p99', float('nan')):.2f}",
                     f"{r.inference_images_per_s:.2f}", f"{r.end_to_end_images_per_s:.2f}", tflops, share, iou])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.rjust(width) for cell, width in zip(row, widths)) for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    peak_note = ("% FP16 peak: of the card's dense FP16 datasheet peak (a reference table, not measured)" if on_gpu else
                 "% CPU peak: of this CPU's estimated peak for the row's arithmetic (cores x clock x operations per "
                 "cycle of its best unit for that precision; not measured)")
    lines.append(f"stage columns: median latency per batch (read .. write: encode and write the files); img/s: images "
                 f"per second; {unit}: the model's FLOPs (times the test-time augmentation views) over inference "
                 f"time; {peak_note}")
    lines += sorted({f"peak: {r.arithmetic}: {r.peak_how}" for r in results if r.peak_how and not on_gpu})
    lines += [f"note: {r.label} at batch {r.batch_size}: torch.compile's first batch took {r.compile_seconds:.1f} s"
              for r in results if r.compile_seconds is not None]
    lines += [f"warning: {warning}" for r in results if (warning := r.percentile_warning())]
    return "\n".join(lines)


def write_json(path: Path, results: list[BenchResult], environment: dict[str, Any], settings: dict[str, Any]) -> None:
    warnings = [warning for r in results if (warning := r.percentile_warning())]
    document = {"environment": environment, "settings": settings, "results": [r.to_dict() for r in results],
                "warnings": warnings}
    atomic_write_bytes(path, (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8"))
