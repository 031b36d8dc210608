"""The torch-free host path against the torch path it replaced, in one run, on real images.

The reference is the host pipeline with PyTorch's functions in the two places the host path changed: the resize
and normalisation (`F.interpolate`, antialiased when shrinking, as `preprocess.py` did) and the nearest upsampling
of masks (`F.interpolate(mode="nearest-exact")`); decoding, the backend, the threshold and the writing are shared.
Measured: the largest difference between the network inputs, the mask IoU between the two paths, and the ISIC
scores each gives. Random weights cannot show a mask difference: give a trained model at its training size.

usage: python benchmarks/host_path_agreement.py --engine MODEL.onnx --pairs DIR --fullres DIR [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dermseg_deploy.backends import open_backend
from dermseg_deploy.core import device_ops
from dermseg_deploy.core.decode import read_file_bytes
from dermseg_deploy.core.decode_policy import DecodePolicy
from dermseg_deploy.core.preprocess import preprocess
from dermseg_deploy.core.stages import HostStages, Prepared
from dermseg_deploy.evaluation.metrics import score_image
from dermseg_deploy.evaluation.pairs import discover_pairs, read_mask
from dermseg_deploy.evaluation.scoring import ImageEvaluation, summarize
from dermseg_deploy.model.metadata import ModelMetadata
from dermseg_deploy.segment.segmenter import Segmenter


class TorchReferenceStages(HostStages):
    """The host stages with PyTorch's resize, normalisation and mask upsampling, as they were before."""

    def preprocess(self, prepared: Prepared) -> None:
        pixels = torch.from_numpy(prepared.pixels).permute(2, 0, 1)
        prepared.network_input = device_ops.preprocess(pixels, self.metadata).numpy()
        prepared.pixels = None

    def finish_mask(self, mask: Any, size_hw: tuple[int, int]) -> np.ndarray:
        return device_ops.upsample_mask(torch.from_numpy(np.ascontiguousarray(mask)), *size_hw).numpy()


class TorchReferenceSegmenter(Segmenter):
    def stages(self, overlay: bool = False) -> HostStages:
        return TorchReferenceStages(self.backend, self.metadata, self.policy, overlay, self.mask_options)


def input_difference(paths: list[Path], size_px: int, reduced_jpeg: bool) -> float:
    """The largest |NumPy - torch| network-input difference over the images (normalised units)."""
    policy, metadata = DecodePolicy(size_px, reduced_jpeg=reduced_jpeg), ModelMetadata(size_px=size_px)
    worst = 0.0
    for path in paths:
        pixels = policy.decode_on_host(read_file_bytes(path), path).pixels
        host = preprocess(pixels, metadata)
        reference = device_ops.preprocess(torch.from_numpy(pixels).permute(2, 0, 1), metadata).numpy()
        worst = max(worst, float(np.abs(host - reference).max()))
    return worst


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero((a > 0) | (b > 0))
    return 1.0 if union == 0 else np.count_nonzero((a > 0) & (b > 0)) / union


def compare_on(engine: Path, data: Path) -> dict[str, Any]:
    """Masks and scores of both paths on every pair under `data`."""
    pairs = discover_pairs(data)
    truths = {pair.image_id: read_mask(pair.mask) for pair in pairs}
    runs = {}
    for name, cls in (("numpy", Segmenter), ("torch", TorchReferenceSegmenter)):
        with cls(open_backend(engine, "cpu")) as segmenter:
            results = list(segmenter.iter_segment_files([p.image for p in pairs], keep_masks=True, batch_size=4))
        failed = [result.message for result in results if result.mask is None]
        if failed:
            raise SystemExit(f"error: {failed[0]}")
        masks = {pair.image_id: result.mask for pair, result in zip(pairs, results) if result.mask is not None}
        evaluations = [ImageEvaluation(key, float(truths[key].mean()), score_image(mask, truths[key]))
                       for key, mask in masks.items()]
        runs[name] = (summarize(evaluations)["all"], masks)
    ious = [iou(runs["numpy"][1][key], runs["torch"][1][key]) for key in runs["numpy"][1]]
    scores = {name: run[0] for name, run in runs.items()}
    return {
        "images": len(ious), "mask_iou_mean": float(np.mean(ious)), "mask_iou_min": float(np.min(ious)),
        "identical_masks": int(sum(value == 1.0 for value in ious)), "scores": scores,
        "jaccard_difference": abs(scores["numpy"]["jaccard"] - scores["torch"]["jaccard"]),
        "thresholded_jaccard_difference": abs(scores["numpy"]["thresholded_jaccard"]
                                              - scores["torch"]["thresholded_jaccard"]),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", type=Path, required=True, help="A trained model (.onnx or .pt) at its training size.")
    parser.add_argument("--pairs", type=Path, required=True, help="ISIC pairs (e.g. ../shared/data/isic2018-task1-512).")
    parser.add_argument("--fullres", type=Path, required=True, help="Full-resolution pairs (../shared/data/isic2017-fullres).")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    with open_backend(args.engine, "cpu") as backend:
        size = backend.metadata.size_px
    fullres = [p.image for p in discover_pairs(args.fullres)]
    pairs = [p.image for p in discover_pairs(args.pairs)]
    inputs = {f"fullres at {s} px, {'reduced' if r else 'full'} JPEG decoding": input_difference(fullres, s, r)
              for s in sorted({size, 512, 1024}) for r in (True, False)}
    for reduced in (True, False):
        inputs[f"pairs at {size} px, {'reduced' if reduced else 'full'} JPEG decoding"] = input_difference(pairs, size, reduced)
    result = {"engine": str(args.engine), "size_px": size,
              "max_input_difference_normalised": inputs,
              "fullres": compare_on(args.engine, args.fullres), "pairs": compare_on(args.engine, args.pairs)}
    text = json.dumps(result, indent=2)
    print(text)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
