"""Mask agreement between two decode paths on real images: the CPU's (libjpeg at reduced DCT scale, or
full size) and the GPU's (nvJPEG at full size), through the same per-image core.

usage: python benchmarks/decode_agreement.py --engine MODEL --images DIR [--size 1024] [--a cpu] [--b cuda] [--json OUT]
       variants: cpu (reduced DCT scale, dermseg-run's default on the CPU), cpu-full (--full-decode), cuda
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from dermseg_deploy import Segmenter
from dermseg_deploy.export.parity import mask_iou
from dermseg_deploy.files.inputs import image_files

VARIANTS = {"cpu": ("cpu", True), "cpu-full": ("cpu", False), "cuda": ("cuda", True)}


def masks(model: Path, variant: str, size: int | None, images: list[Path]) -> list[np.ndarray]:
    device, reduced = VARIANTS[variant]
    with Segmenter.open(model, device, size, reduced_jpeg=reduced) as segmenter:
        results = segmenter.segment_files(images)
    failed = [r.message for r in results if r.mask is None]
    if failed:
        raise SystemExit(f"error: {failed[0]}")
    return [r.mask for r in results if r.mask is not None]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", type=Path, required=True)
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--size", type=int, default=None)
    parser.add_argument("--a", choices=sorted(VARIANTS), default="cpu")
    parser.add_argument("--b", choices=sorted(VARIANTS), default="cuda")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    images = image_files(args.images)
    import torch

    first, second = masks(args.engine, args.a, args.size, images), masks(args.engine, args.b, args.size, images)
    ious = {path.name: mask_iou(torch.from_numpy(x > 0), torch.from_numpy(y > 0)) for path, x, y in zip(images, first, second)}
    summary = {"engine": str(args.engine), "size_px": args.size, "a": args.a, "b": args.b, "images": len(ious),
               "mean_iou": float(np.mean(list(ious.values()))), "worst_iou": min(ious.values()), "per_image": ious}
    if args.b == "cuda" or args.a == "cuda":
        summary["gpu"] = torch.cuda.get_device_name()
    text = json.dumps(summary, indent=2) + "\n"
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text)
    print(json.dumps({k: v for k, v in summary.items() if k != "per_image"}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
