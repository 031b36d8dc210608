"""Ray Serve latency (p50/p95/p99 by nearest rank) and throughput at 1, 4 and 16 concurrent clients, against
direct `Segmenter` calls from as many threads, on the same images and model, in one run.

usage: python benchmarks/serve_bench.py [--images DIR] [--size 512] [--requests 48] [--replicas 1] [--json OUT]

The service runs on a local Ray cluster started here, on 127.0.0.1, with the replicas sharing this machine's
cores (`--threads` each); clients send the image files' bytes and read back the PNG mask. Direct calls use one
`Segmenter` with all the cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from random_model import random_onnx  # noqa: E402

from dermseg_deploy import Segmenter  # noqa: E402
from dermseg_deploy.backends import BackendOptions  # noqa: E402
from dermseg_deploy.bench.stats import summarize_ms  # noqa: E402
from dermseg_deploy.files.inputs import image_files  # noqa: E402
from dermseg_deploy.scale.segmenter_spec import SegmenterSpec  # noqa: E402
from dermseg_deploy.scale.serve_client import ServeClient  # noqa: E402

LEVELS = (1, 4, 16)


def measure(call: Callable[[Path], object], images: list[Path], clients: int, requests: int) -> dict[str, float]:
    """`requests` calls from `clients` threads; latency per call and throughput over the whole level."""
    work = [images[i % len(images)] for i in range(requests)]

    def timed(path: Path) -> float:
        begin = time.perf_counter()
        call(path)
        return (time.perf_counter() - begin) * 1000.0

    for path in images[:clients]:  # warm-up
        call(path)
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = list(pool.map(timed, work))
    elapsed = time.perf_counter() - started
    summary = summarize_ms(latencies)
    return {"clients": clients, "requests": requests, "throughput_images_per_s": requests / elapsed,
            **{f"latency_{k}_ms": v for k, v in summary.items() if k in ("mean", "median", "p95", "p99", "max")}}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=None, help="default: the shipped samples")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--requests", type=int, default=48)
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--max-batch-size", type=int, default=8)
    parser.add_argument("--batch-wait-ms", type=float, default=10.0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    import ray

    from dermseg_deploy.scale.serve_app import ServeSettings
    from dermseg_deploy.scale.serve_front import serving

    images = image_files(args.images)
    model = random_onnx(Path(tempfile.mkdtemp(prefix="dermseg-serve-bench-")), args.size)
    cpus = os.cpu_count() or 1
    threads = max(1, cpus // args.replicas)
    results: dict[str, list[dict[str, float]]] = {"direct Segmenter": [], "ray serve": []}
    with Segmenter.open(model, "cpu") as segmenter:
        for clients in LEVELS:
            results["direct Segmenter"].append(measure(segmenter.segment, images, clients, args.requests))
            print("direct", results["direct Segmenter"][-1], file=sys.stderr)
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    try:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        settings = ServeSettings(SegmenterSpec(str(model), "cpu", options=BackendOptions(threads=threads)),
                                 max_batch_size=args.max_batch_size, batch_wait_ms=args.batch_wait_ms)
        with serving(settings, args.replicas, float(threads), 0.0, "127.0.0.1", port, "bench"):
            client = ServeClient(f"http://127.0.0.1:{port}")
            for clients in LEVELS:
                results["ray serve"].append(measure(client.segment, images, clients, args.requests))
                print("serve", results["ray serve"][-1], file=sys.stderr)
    finally:
        ray.shutdown()
    document = {"command": " ".join(["python benchmarks/serve_bench.py", *argv]), "size_px": args.size,
                "images": [p.name for p in images], "replicas": args.replicas, "threads_per_replica": threads,
                "max_batch_size": args.max_batch_size, "batch_wait_ms": args.batch_wait_ms, "cpu_count": cpus,
                "python": platform.python_version(), "ray": ray.__version__,
                "model": "ResNet34-UNet, random weights, ONNX Runtime CPU", "results": results}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    for name, rows in results.items():
        for row in rows:
            print(f"{name:17s} {row['clients']:3d} clients: p50 {row['latency_median_ms']:8.1f} ms, p95 "
                  f"{row['latency_p95_ms']:8.1f} ms, p99 {row['latency_p99_ms']:8.1f} ms, "
                  f"{row['throughput_images_per_s']:.2f} images/s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
