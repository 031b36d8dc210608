"""The benchmark's figure: per-image latency by stage (stacked) and images/s, per engine and batch size.

matplotlib is imported only here, when a plot is asked for (`pip install 'dermseg[plot]'`); where it is
missing, `plot_unavailable` says so and the benchmark goes on without the figure.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from ..util.atomic import atomic_write_bytes
from ..util.extras import PLOT_EXTRA, extra_hint
from .measure import STAGES, BenchResult

STAGE_COLOURS = ("#4c72b0", "#55a868", "#c44e52", "#8172b2", "#ccb974", "#64b5cd")


def plot_unavailable() -> str | None:
    """Why no plot can be drawn here (matplotlib missing), or None."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return f"matplotlib is not installed ({extra_hint(PLOT_EXTRA)}); the plot is skipped"
    return None


def environment_caption(environment: dict[str, Any], images: int) -> str:
    device = environment.get("gpu") or f"{environment.get('cpu')} ({environment.get('cpu_count')} cores)"
    versions = f"torch {environment.get('torch')}, onnxruntime {environment.get('onnxruntime')}"
    if environment.get("tensorrt"):
        versions += f", TensorRT {environment['tensorrt']}"
    return f"{device}; {versions}; {images} images; {environment.get('date', '')}".rstrip("; ")


def write_plot(path: Path, results: list[BenchResult], caption: str) -> None:
    """Two panels: mean milliseconds per image in each stage (stacked bars), and inference-only and end-to-end
    images/s; one row per engine and batch size; axes with units, the environment as the caption."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r.label}\nbatch {r.batch_size}" for r in results]
    rows = range(len(results))
    figure, (latency, rate) = plt.subplots(1, 2, figsize=(13, 2.4 + 0.7 * len(results)), sharey=True)
    left = [0.0] * len(results)
    for stage, colour in zip(STAGES, STAGE_COLOURS):
        per_image = [r.stage_ms[stage].get("mean", 0.0) / max(1.0, r.images_per_batch or r.batch_size) for r in results]
        latency.barh(rows, per_image, left=left, color=colour, label=stage)
        left = [a + b for a, b in zip(left, per_image)]
    latency.set_yticks(list(rows), labels)
    latency.invert_yaxis()
    latency.set_xlabel("mean latency per image (ms), by stage")
    latency.legend(loc="upper center", bbox_to_anchor=(0.5, -0.28), ncol=len(STAGES), fontsize="small", frameon=False)
    latency.grid(axis="x", alpha=0.3)
    height = 0.38
    rate.barh([i - height / 2 for i in rows], [r.inference_images_per_s for r in results], height, color="#dd8452",
              label="inference only")
    rate.barh([i + height / 2 for i in rows], [r.end_to_end_images_per_s for r in results], height, color="#4c72b0",
              label="end to end (dermseg-run pipeline)")
    rate.set_xlabel("throughput (images/s)")
    rate.legend(loc="upper center", bbox_to_anchor=(0.5, -0.28), ncol=2, fontsize="small", frameon=False)
    rate.grid(axis="x", alpha=0.3)
    figure.suptitle("dermseg-bench")
    figure.text(0.5, 0.005, caption, ha="center", va="bottom", fontsize="small")
    figure.tight_layout(rect=(0, 0.04, 1, 0.97))
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    atomic_write_bytes(path, buffer.getvalue())
