"""Does the CPU's emulated FP16 check agree with true half precision? Both against FP32, on real images.

    python benchmarks/fp16_emulation.py --checkpoint engines/demo.pt \
        --images ../shared/data/isic2017-fullres/ISIC-2017_Validation_Data --size 128 --count 3 \
        --json benchmarks/results/fp16-emulation-cpu-<date>/result.json

Per image: mask IoU and max |logit difference| of emulated FP16 and of PyTorch half against FP32, and of the
two against each other; seconds per image of each (half-precision kernels on the CPU are very slow).
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import torch

from dermseg_deploy.bench.environment import cpu_model
from dermseg_deploy.export.check_images import load_batch
from dermseg_deploy.export.fp16_emulation import EmulatedFp16
from dermseg_deploy.export.parity import mask_iou
from dermseg_deploy.model.checkpoint import load_checkpoint, model_from_checkpoint


def timed(model: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, float]:
    start = time.perf_counter()
    with torch.inference_mode():
        out = model(x).float()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--count", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    checkpoint = load_checkpoint(args.checkpoint)
    model = model_from_checkpoint(checkpoint, str(args.checkpoint))
    metadata = checkpoint.metadata.with_updates(size_px=args.size)
    paths = sorted(p for p in args.images.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[: args.count]
    batch = load_batch(paths, metadata)
    threshold = metadata.logit_threshold
    full, half, emulated = model.float().eval(), copy.deepcopy(model).half().eval(), EmulatedFp16(model)
    rows = []
    for path, image in zip(paths, batch):
        x = image[None]
        reference, fp32_s = timed(full, x)
        true_half, half_s = timed(half, x.half())
        emulation, emulated_s = timed(emulated, x)
        rows.append({
            "image": path.name,
            "iou_emulated_vs_fp32": mask_iou(emulation > threshold, reference > threshold),
            "iou_half_vs_fp32": mask_iou(true_half > threshold, reference > threshold),
            "iou_emulated_vs_half": mask_iou(emulation > threshold, true_half > threshold),
            "max_abs_diff_emulated_vs_half": float((emulation - true_half).abs().max()),
            "max_abs_diff_half_vs_fp32": float((true_half - reference).abs().max()),
            "max_abs_logit": float(reference.abs().max()),
            "nonfinite_half": int((~torch.isfinite(true_half)).sum()),
            "nonfinite_emulated": int((~torch.isfinite(emulation)).sum()),
            "seconds_fp32": fp32_s, "seconds_half": half_s, "seconds_emulated": emulated_s,
        })
        print(json.dumps(rows[-1]))
    summary = {"checkpoint": str(args.checkpoint), "size_px": args.size, "images": len(rows),
               "cpu": cpu_model(), "torch": torch.__version__,
               "threads": torch.get_num_threads(), "rows": rows,
               "half_over_emulated_time": sum(r["seconds_half"] for r in rows) / sum(r["seconds_emulated"] for r in rows)}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "rows"}))


if __name__ == "__main__":
    main()
