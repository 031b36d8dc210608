"""ONNX Runtime's INT8 products on this CPU: its fast U8S8 kernels (which saturate on x86 CPUs without VNNI) and the
exact ones the runtime asks for (`session.x64quantprecision`), each against the exact arithmetic (the QDQ pairs in
floating point, graph optimizations off): logit error, mask IoU, Jaccard against the ground truth, time per image.

usage: python benchmarks/int8_exactness.py [--model MODEL.onnx] --data DIR [--limit N] --json OUT.json
DIR: ISIC 2018 pairs (ISIC2018_Task1-2_Training_Input/ and ISIC2018_Task1_Training_GroundTruth/, e.g.
../shared/data/isic2018-task1-512). One thread per session; run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import onnxruntime  # noqa: E402
from PIL import Image  # noqa: E402

from dermseg_deploy.backends.onnxruntime_backend import EXACT_INT8_PRODUCTS  # noqa: E402
from dermseg_deploy.core.decode import decode_image  # noqa: E402
from dermseg_deploy.core.preprocess import preprocess  # noqa: E402
from dermseg_deploy.export.web_folder import model_metadata  # noqa: E402
from dermseg_deploy.model.shipped import verified_shipped_model  # noqa: E402
from dermseg_deploy.util.cpu import cpu_record  # noqa: E402

SETTINGS = ("fast", "exact products", "exact (QDQ in floating point)")


def session(model: Path, setting: str) -> Any:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
    if setting == "exact products":
        options.add_session_config_entry(*EXACT_INT8_PRODUCTS)
    elif setting.startswith("exact (QDQ"):
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    return onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="an INT8 .onnx (default: the shipped model)")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=300)
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args(argv)
    model = args.model or verified_shipped_model().path
    metadata = model_metadata(model)
    sessions = {setting: session(model, setting) for setting in SETTINGS}
    name = sessions[SETTINGS[0]].get_inputs()[0].name
    cut = float(np.log(metadata.threshold / (1 - metadata.threshold)))
    images = sorted((args.data / "ISIC2018_Task1-2_Training_Input").glob("*.jpg"))[: args.limit]
    seconds = {setting: 0.0 for setting in SETTINGS}
    rows: dict[str, dict[str, list[float]]] = {s: {"logit_error": [], "iou_vs_exact": [], "jaccard": []} for s in SETTINGS}
    for path in images:
        truth_path = args.data / "ISIC2018_Task1_Training_GroundTruth" / f"{path.stem}_segmentation.png"
        with Image.open(truth_path) as truth_image:
            truth = np.asarray(truth_image.convert("L")) > 127
        batch = preprocess(decode_image(path.read_bytes(), path), metadata)[None]
        logits = {}
        for setting, runner in sessions.items():
            start = time.perf_counter()
            logits[setting] = runner.run(None, {name: batch})[0][0, 0]
            seconds[setting] += time.perf_counter() - start
        exact = logits[SETTINGS[-1]]
        for setting, values in logits.items():
            mask = values > cut
            full = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize(truth.shape[::-1], Image.NEAREST)) > 0
            rows[setting]["logit_error"].append(float(np.abs(values - exact).max()))
            rows[setting]["iou_vs_exact"].append(jaccard(mask, exact > cut))
            rows[setting]["jaccard"].append(jaccard(full, truth))
    summary = {setting: {"max_logit_error": max(r["logit_error"]), "mean_logit_error_max": float(np.mean(r["logit_error"])),
                         "mean_iou_vs_exact": float(np.mean(r["iou_vs_exact"])), "worst_iou_vs_exact": min(r["iou_vs_exact"]),
                         "mean_jaccard": float(np.mean(r["jaccard"])),
                         "ms_per_image": 1000 * seconds[setting] / len(images)} for setting, r in rows.items()}
    record = {"model": model.name, "images": len(images), "data": str(args.data), "cpu": cpu_record(),
              "onnxruntime": onnxruntime.__version__, "settings": summary}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(record, indent=1) + "\n")
    for setting, figures in summary.items():
        print(f"{setting:32s} " + ", ".join(f"{key} {value:.4f}" for key, value in figures.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
