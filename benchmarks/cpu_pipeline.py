"""`dermseg-run` as a whole process on the CPU, in one run: images/s from process start to exit (start-up and the
first batch included), time to the first mask, and where each image's time went (the run's per-stage line), for
several engines and settings side by side. Variants alternate, so all see the same machine.

usage: python benchmarks/cpu_pipeline.py --images DIR --variant NAME=MODEL[::FLAGS] [--variant ...] [--repeats 3]
       [--json OUT]
  e.g. --variant "ort-fp32=engines/model.onnx" --variant "ov-bf16=engines/model.xml::--precision bf16 --threads 2"
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
STAGE_LINE = re.compile(r"per image: (.*)")


def parse_variant(text: str) -> tuple[str, Path, list[str]]:
    name, _, rest = text.partition("=")
    model, _, flags = rest.partition("::")
    return name, Path(model), shlex.split(flags)


def run_once(dermseg_run: Path, model: Path, images: Path, flags: list[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="dermseg-cpu-pipeline-") as folder:
        out = Path(folder) / "masks"
        start = time.perf_counter()
        process = subprocess.Popen([str(dermseg_run), "--engine", str(model), str(images), "-o", str(out), "-q",
                                    "--device", "cpu", *flags], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   text=True)
        first = None
        while process.poll() is None:
            if first is None and out.is_dir() and any(out.glob("*_segmentation.png")):
                first = time.perf_counter() - start
            time.sleep(0.005)
        total = time.perf_counter() - start
        stderr = process.stderr.read() if process.stderr else ""
        if process.returncode != 0:
            raise SystemExit(f"{model} {flags}: exit {process.returncode}: {stderr[-2000:]}")
        masks = len(list(out.glob("*_segmentation.png")))
    stages = {}
    match = STAGE_LINE.search(stderr)
    if match:
        for part in match.group(1).split(", "):
            stage, value, _ = part.split(" ")
            stages[stage] = float(value)
    return {"total_s": total, "first_mask_s": first if first is not None else total, "images": masks,
            "images_per_s": masks / total, "stage_ms": stages}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--variant", action="append", required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dermseg-run", type=Path, default=Path(sys.executable).with_name("dermseg-run"))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    variants = [parse_variant(text) for text in args.variant]
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in variants}
    for _ in range(args.repeats):
        for name, model, flags in variants:
            runs[name].append(run_once(args.dermseg_run, model.resolve(), args.images.resolve(), flags))
            print(f"{name}: {runs[name][-1]['images_per_s']:.2f} images/s", file=sys.stderr)
    summary = {}
    for name, model, flags in variants:
        rows = runs[name]
        stages = {stage: round(statistics.median(r["stage_ms"].get(stage, 0.0) for r in rows), 1)
                  for stage in rows[0]["stage_ms"]}
        summary[name] = {"model": str(model), "flags": flags,
                         "median_images_per_s": round(statistics.median(r["images_per_s"] for r in rows), 3),
                         "median_total_s": round(statistics.median(r["total_s"] for r in rows), 2),
                         "median_first_mask_s": round(statistics.median(r["first_mask_s"] for r in rows), 2),
                         "median_stage_ms": stages, "runs": rows}
    result = {"images": str(args.images), "repeats": args.repeats, "cpu_count": os.cpu_count(), "variants": summary}
    text = json.dumps(result, indent=2)
    print(text)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
