"""Where one batch's inference time goes: torch.profiler over the PyTorch FP16 fast path (or another variant).

    python benchmarks/gpu_profile.py --size 1024 --batch 8 --variant fp16 --out benchmarks/results/<run>/profile

Random weights (they do not change which kernels run or how long they take). Writes `kernels.json` and
`kernels.md`: the top kernels by device time per batch (name, ms, share of the batch), whether each looks like a
tensor-core kernel (by the names NVIDIA's libraries give them). On a machine without CUDA it profiles the CPU's
operators instead (a smoke test of the script).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from dermseg_deploy.backends import BackendOptions
from dermseg_deploy.backends.torch_backend import TorchBackend
from dermseg_deploy.model.metadata import ModelMetadata
from dermseg_deploy.model.network import ResNet34UNet

TENSOR_CORE_NAMES = re.compile(r"(xmma|hmma|wgmma|gmma|s16816|h16816|s1688|h1688|tensorop|sm80|sm90|cutlass|_16x)",
                               re.IGNORECASE)
VARIANTS = {
    "fp32": BackendOptions(),
    "fp16": BackendOptions(precision="fp16", channels_last=True),
    "compiled": BackendOptions(precision="fp16", channels_last=True, compile=True),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="fp16")
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    options = VARIANTS[args.variant]
    if not cuda:
        options = BackendOptions(compile=options.compile)
    torch.manual_seed(0)
    backend = TorchBackend(ResNet34UNet().eval(), ModelMetadata(size_px=args.size), device, options)
    batch = torch.randn(args.batch, 3, args.size, args.size, device=device)
    for _ in range(3):
        backend.infer(batch)
    if cuda:
        torch.cuda.synchronize()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        for _ in range(args.iterations):
            backend.infer(batch)
        if cuda:
            torch.cuda.synchronize()
    events = prof.key_averages()
    attribute = "self_device_time_total" if cuda else "self_cpu_time_total"

    def self_us(event: object) -> float:
        value = getattr(event, attribute, None)
        if value is None and cuda:
            value = getattr(event, "self_cuda_time_total", 0.0)
        return float(value or 0.0)

    kernels = [e for e in events if self_us(e) > 0 and (not cuda or e.device_type.name == "CUDA")]
    total_us = sum(self_us(e) for e in kernels) or 1.0
    ranked = sorted(kernels, key=self_us, reverse=True)[: args.top]
    rows = [{"name": e.key, "ms_per_batch": self_us(e) / 1000.0 / args.iterations, "share": self_us(e) / total_us,
             "calls_per_batch": e.count / args.iterations, "tensor_core_name": bool(TENSOR_CORE_NAMES.search(e.key))}
            for e in ranked]
    summary = {"device": torch.cuda.get_device_name() if cuda else "cpu", "variant": args.variant, "size_px": args.size,
               "batch": args.batch, "iterations": args.iterations, "ms_per_batch": total_us / 1000.0 / args.iterations,
               "tensor_core_share": sum(self_us(e) for e in kernels if TENSOR_CORE_NAMES.search(e.key)) / total_us,
               "kernels": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "kernels.json").write_text(json.dumps(summary, indent=1) + "\n")
    lines = [f"# Top kernels: {summary['device']}, {args.variant}, batch {args.batch} at {args.size} px",
             "", f"{summary['ms_per_batch']:.2f} ms of {'GPU' if cuda else 'CPU'} time per batch; "
             f"{100 * summary['tensor_core_share']:.1f}% in kernels named like tensor-core kernels.", "",
             "| kernel | ms per batch | share | calls | tensor-core name |", "|---|---|---|---|---|"]
    lines += [f"| `{r['name'][:110]}` | {r['ms_per_batch']:.3f} | {100 * r['share']:.1f}% | {r['calls_per_batch']:.0f} | "
              f"{'yes' if r['tensor_core_name'] else ''} |" for r in rows]
    (args.out / "kernels.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines[:3]))


if __name__ == "__main__":
    main()
