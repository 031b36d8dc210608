"""What the predicted Jaccard costs: its signals' time per image (`core.quality.host_signals`, the host path) against the
whole `dermseg-run` process's time per image, in interleaved runs.

usage: python benchmarks/quality_cost.py --images DIR [--runs 3] [--json OUT]
Per run: the whole `dermseg-run` (the shipped model, 128 px, ONNX Runtime INT8, on every image of DIR) timed from
outside; then the signals on 200 logit maps of the model's size, and of 512 and 1024 px (for larger models). The
share is the signals' median time per image over the process's time per image.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dermseg_deploy.bench.environment import cpu_model  # noqa: E402
from dermseg_deploy.core.quality import host_signals  # noqa: E402
from dermseg_deploy.files.inputs import image_files  # noqa: E402


def signals_ms(size: int, repeats: int = 200) -> float:
    rng = np.random.default_rng(size)
    logits = rng.normal(0, 4, (1, 1, size, size)).astype(np.float32)
    masks = (logits > 0).astype(np.uint8)
    host_signals(logits, masks)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        host_signals(logits, masks)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    count = len(image_files(args.images))
    runs = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            subprocess.run([str(ROOT / ".venv" / "bin" / "dermseg-run"), str(args.images), "-o", out, "-q",
                            "--device", "cpu"], check=True, capture_output=True)
            process_ms = 1000 * (time.perf_counter() - start) / count
        runs.append({"process_ms_per_image": process_ms, **{f"signals_ms_{s}px": signals_ms(s) for s in (128, 512, 1024)}})
        print(runs[-1], file=sys.stderr)
    process = statistics.median(r["process_ms_per_image"] for r in runs)
    summary = {size: statistics.median(r[f"signals_ms_{size}px"] for r in runs) for size in (128, 512, 1024)}
    document = {"command": " ".join(["python benchmarks/quality_cost.py", *argv]), "cpu": cpu_model(), "images": count,
                "runs": runs, "process_ms_per_image": process,
                "signals_ms_per_image": {f"{s}px": v for s, v in summary.items()},
                "share_of_process_at_128px": summary[128] / process}
    if args.json:
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    print(f"signals {summary[128]:.3f} ms per image at 128 px ({100 * summary[128] / process:.2f}% of the whole "
          f"dermseg-run's {process:.1f} ms per image); at 512 px {summary[512]:.2f} ms, at 1024 px {summary[1024]:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
