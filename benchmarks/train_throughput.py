"""Training throughput on the CPU, in one run: images/s of the training step (forward, loss, backward, Adam) in FP32
and in BF16 autocast at several sizes, against what the data path delivers per image (the resize cache's read, the
augmentation, the normalisation: one loader process's work), so that one can see whether the loader keeps up.

usage: python benchmarks/train_throughput.py --data DIR [--size 64 --size 96 ...] [--batch-size 8] [--steps 6]
       [--cache-dir DIR] [--json OUT]
The step runs on synthetic tensors (its time does not depend on the pixels); the data path runs on real pairs from
DATA, through the same `SegmentationDataset` the trainer uses, with its resize cache warmed first.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dermseg_deploy.evaluation.pairs import discover_pairs  # noqa: E402
from dermseg_deploy.model.metadata import ModelMetadata  # noqa: E402
from dermseg_deploy.model.model_config import ModelConfig  # noqa: E402
from dermseg_deploy.model.network import ResNet34UNet  # noqa: E402
from dermseg_deploy.util import cpu  # noqa: E402
from dermseg_train.data import ResizeCache, SegmentationDataset  # noqa: E402
from dermseg_train.losses import SegmentationLoss  # noqa: E402


def step_images_per_s(size: int, batch: int, steps: int, bf16: bool) -> float:
    """Images/s of training steps on a channels-last model, as the trainer runs them (the first step is warm-up)."""
    torch.manual_seed(0)
    model = ResNet34UNet(ModelConfig()).to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    loss_fn = SegmentationLoss(1.0)
    images = torch.randn(batch, 3, size, size).contiguous(memory_format=torch.channels_last)
    masks = (torch.rand(batch, 1, size, size) > 0.5).float()
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = loss_fn(model(images), masks)
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return batch * steps / sum(times[1:])


def data_ms_per_image(pairs: list[Any], size: int, cache: ResizeCache) -> dict[str, float]:
    """Milliseconds per image of the data path on one thread: cache read alone, then read + augment + normalise."""
    dataset = SegmentationDataset(pairs, size, ModelMetadata(size_px=size), augment=True, cache=cache)
    for pair in pairs:  # warm the cache, as every epoch after the first finds it
        cache.load(pair, size)
    start = time.perf_counter()
    for pair in pairs:
        cache.load(pair, size)
    read = time.perf_counter() - start
    start = time.perf_counter()
    for index in range(len(pairs)):
        dataset[index]
    whole = time.perf_counter() - start
    return {"cache_read_ms": 1000 * read / len(pairs), "read_augment_normalise_ms": 1000 * whole / len(pairs)}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--size", type=int, action="append")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--images", type=int, default=64, help="Real pairs for the data path.")
    parser.add_argument("--cache-dir", type=Path, default=Path("runs/cache"))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    pairs = discover_pairs(args.data)[: args.images]
    cache = ResizeCache(args.cache_dir)
    rows = []
    for size in args.size or [64, 96, 128, 192]:
        row: dict[str, Any] = {"size_px": size, "batch_size": args.batch_size}
        row["fp32_images_per_s"] = step_images_per_s(size, args.batch_size, args.steps, bf16=False)
        row["bf16_images_per_s"] = step_images_per_s(size, args.batch_size, args.steps, bf16=True)
        row["bf16_speedup"] = row["bf16_images_per_s"] / row["fp32_images_per_s"]
        row |= data_ms_per_image(pairs, size, cache)
        row["one_loader_process_images_per_s"] = 1000 / row["read_augment_normalise_ms"]
        rows.append({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()})
        print(json.dumps(rows[-1]), flush=True)
    result = {"cpu": cpu.bf16_units(), "cores": cpu.usable_cores(), "torch_threads": torch.get_num_threads(),
              "cpu_count": os.cpu_count(), "steps_timed": args.steps, "data_images": len(pairs), "rows": rows}
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
