"""Ray Data with 1 and 2 actors against a local `dermseg-run`, on the same images, in one run.

usage: python benchmarks/ray_bench.py --images DIR [--size 512] [--repeats 2] [--json OUT]

Every configuration runs `dermseg-run` as a user would (a subprocess, `--overwrite`, its own summary line
read back); the Ray runs join one local cluster started here, so cluster start-up is not counted, but each
run's actor start-up (opening the model) and Ray Data's planning are. Each configuration runs `--repeats`
times, interleaved; the median rate is reported, with the ratio to the local run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from random_model import random_onnx  # noqa: E402

RATE = re.compile(r"(\d+) segmented, .* in ([\d.]+) s \(([\d.]+) images/s\)")


def run(command: list[str]) -> dict[str, float]:
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - started
    match = RATE.search(result.stderr)
    if result.returncode not in (0, 1) or match is None:
        raise SystemExit(f"error: {' '.join(command)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return {"images": int(match[1]), "seconds": float(match[2]), "images_per_s": float(match[3]), "wall_s": wall}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    import ray

    work = Path(tempfile.mkdtemp(prefix="dermseg-ray-bench-"))
    model = random_onnx(work, args.size)
    cpus = os.cpu_count() or 1
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    address = ray.get_runtime_context().gcs_address
    base = [sys.executable, "-m", "dermseg_deploy.cli.run", "--engine", str(model), str(args.images), "--overwrite", "-q",
            "--batch-size", "4"]
    configs = {
        "dermseg-run (local)": [*base, "-o", str(work / "local"), "--device", "cpu"],
        "ray, 1 actor x 2 threads": [*base, "-o", str(work / "ray1"), "--ray", "--ray-address", address,
                                     "--ray-actors", "1", "--threads", str(cpus)],
        "ray, 2 actors x 1 thread": [*base, "-o", str(work / "ray2"), "--ray", "--ray-address", address,
                                     "--ray-actors", "2", "--threads", str(max(1, cpus // 2))],
    }
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in configs}
    try:
        for _ in range(args.repeats):
            for name, command in configs.items():
                runs[name].append(run(command))
                print(f"{name}: {runs[name][-1]}", file=sys.stderr)
    finally:
        ray.shutdown()
    local = statistics.median(r["images_per_s"] for r in runs["dermseg-run (local)"])
    summary = {name: {"median_images_per_s": statistics.median(r["images_per_s"] for r in rs),
                      "ratio_to_local": statistics.median(r["images_per_s"] for r in rs) / local, "runs": rs}
               for name, rs in runs.items()}
    document = {"command": " ".join(["python benchmarks/ray_bench.py", *argv]), "size_px": args.size,
                "images": len(list(args.images.glob("*"))), "cpu_count": cpus, "python": platform.python_version(),
                "ray": ray.__version__, "model": "ResNet34-UNet, random weights, ONNX Runtime CPU", "results": summary}
    text = json.dumps(document, indent=2) + "\n"
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text)
    for name, values in summary.items():
        print(f"{name:28s} {values['median_images_per_s']:6.2f} images/s  x{values['ratio_to_local']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
