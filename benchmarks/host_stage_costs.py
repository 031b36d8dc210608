"""One core's work per image outside inference, stage by stage, on one thread: read, decode (dermseg-run's policy),
resize and normalise, upsample a mask to the image's size, PNG-encode it. What the host stages cost beside the
inference they overlap with (`results/cpu-limit-2026-12-06/`).

usage: python benchmarks/host_stage_costs.py --images DIR [--size 512] [--size 1024]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dermseg_deploy.core.decode import read_file_bytes  # noqa: E402
from dermseg_deploy.core.decode_policy import DecodePolicy  # noqa: E402
from dermseg_deploy.core.masks import upsample_mask  # noqa: E402
from dermseg_deploy.core.preprocess import preprocess  # noqa: E402
from dermseg_deploy.files.inputs import image_files  # noqa: E402
from dermseg_deploy.files.outputs import encode_png  # noqa: E402
from dermseg_deploy.model.metadata import ModelMetadata  # noqa: E402

STAGES = ("read", "decode", "preprocess", "upsample", "encode")


def stage_ms(files: list[Path], size_px: int) -> dict[str, float]:
    policy, metadata = DecodePolicy(size_px), ModelMetadata(size_px=size_px)
    totals = dict.fromkeys(STAGES, 0.0)
    for path in files:
        times = [time.perf_counter()]
        data = read_file_bytes(path)
        times.append(time.perf_counter())
        decoded = policy.decode_on_host(data, path)
        times.append(time.perf_counter())
        network_input = preprocess(decoded.pixels, metadata)
        times.append(time.perf_counter())
        mask = upsample_mask((network_input[0] > 0).astype(np.uint8), *decoded.size_hw)  # a mask with real borders
        times.append(time.perf_counter())
        encode_png(mask)
        times.append(time.perf_counter())
        for stage, start, end in zip(STAGES, times, times[1:]):
            totals[stage] += end - start
    return {stage: round(1000 * value / len(files), 1) for stage, value in totals.items()}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--size", type=int, action="append")
    args = parser.parse_args(argv)
    files = image_files(args.images)
    for size in args.size or [512]:
        costs = stage_ms(files, size)
        print(f"{size} px, ms per image over {len(files)} images: {costs}, total {sum(costs.values()):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
