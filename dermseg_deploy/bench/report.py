"""Benchmark output: a readable table, JSON for machines, a PNG bar chart (drawn with Pillow)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from ..atomic import atomic_write_bytes
from .measure import STAGES, BenchResult


def format_table(results: list[BenchResult]) -> str:
    """One row per engine and batch size: stage medians, inference and end-to-end rates, mask IoU."""
    header = ["engine", "batch", *[f"{s} ms" for s in STAGES], "infer p99 ms", "infer img/s", "e2e img/s", "IoU vs ref"]
    rows = [header]
    for r in results:
        medians = [f"{r.stage_ms[s].get('median', float('nan')):.2f}" for s in STAGES]
        iou = "-" if r.mean_iou_vs_reference is None else f"{r.mean_iou_vs_reference:.4f}"
        rows.append([r.backend, str(r.batch_size), *medians, f"{r.stage_ms['inference'].get('p99', float('nan')):.2f}",
                     f"{r.inference_images_per_s:.2f}", f"{r.end_to_end_images_per_s:.2f}", iou])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.rjust(width) for cell, width in zip(row, widths)) for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    lines.append("stage columns: median latency per batch (read .. encode_write); img/s: images per second")
    return "\n".join(lines)


def write_json(path: Path, results: list[BenchResult], environment: dict[str, Any], settings: dict[str, Any]) -> None:
    document = {"environment": environment, "settings": settings, "results": [r.to_dict() for r in results]}
    atomic_write_bytes(path, (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def write_plot(path: Path, results: list[BenchResult], title: str) -> None:
    """Horizontal bars: end-to-end and inference-only images/s for each engine and batch size."""
    bar_h, gap, left, right, top = 14, 10, 330, 140, 40
    width = 1000
    height = top + len(results) * (2 * bar_h + gap) + 40
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.text((10, 10), title, fill="black")
    peak = max([max(r.end_to_end_images_per_s, r.inference_images_per_s) for r in results] + [1e-9])
    scale = (width - left - right) / peak
    y = top
    for r in results:
        draw.text((10, y + bar_h // 2), f"{r.backend} (batch {r.batch_size})", fill="black")
        for value, colour, label in ((r.end_to_end_images_per_s, (31, 119, 180), "end-to-end"),
                                     (r.inference_images_per_s, (255, 127, 14), "inference")):
            draw.rectangle([left, y, left + max(1, int(value * scale)), y + bar_h - 2], fill=colour)
            draw.text((left + int(value * scale) + 6, y), f"{label}: {value:.1f} images/s", fill="black")
            y += bar_h
        y += gap
    draw.text((10, height - 25), "blue: end-to-end dermseg-run pipeline; orange: inference only", fill="black")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())
