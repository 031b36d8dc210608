"""Which signals make the predicted Jaccard: predictors fitted on the selection half, scored on every subset.

usage: python benchmarks/quality_choice.py SIGNALS.csv
SIGNALS.csv is benchmarks/quality_signals.py's. For each set of signals, two ways to score: least squares of Jaccard
(linear) and logistic regression of a failure (J < 0.65); then the isotonic map of the score to Jaccard, as the
runtime's calibration does. Per subset: AUROC for a failure, mean absolute error, failures among the 10% least
confident. The rule: the selection half's best AUROC among predictors whose mean absolute error there is no worse
than the soft Jaccard's alone.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dermseg_deploy.evaluation.quality_fit import isotonic  # noqa: E402
from dermseg_deploy.evaluation.quality_metrics import auroc_of_failures, least_confident_failures  # noqa: E402

SETS = [("soft_jaccard",), ("soft_jaccard", "log_compactness"), ("soft_jaccard", "centre_distance", "log_compactness"),
        ("soft_jaccard", "margin", "border"), ("soft_jaccard", "centre_distance", "log_compactness", "margin", "area")]


def logistic(x: np.ndarray, failed: np.ndarray, l2: float = 1.0) -> np.ndarray:
    mean, spread = x.mean(0), x.std(0) + 1e-9
    design = np.c_[np.ones(len(x)), (x - mean) / spread]
    weights = np.zeros(design.shape[1])
    penalty = np.diag(np.r_[0.0, np.full(design.shape[1] - 1, l2)])
    for _ in range(50):
        p = 1 / (1 + np.exp(-design @ weights))
        weights -= np.linalg.solve((design.T * (p * (1 - p))) @ design + penalty, design.T @ (p - failed) + penalty @ weights)
    return np.r_[weights[0] - (weights[1:] * mean / spread).sum(), weights[1:] / spread]  # on the raw signals


def main(path: Path) -> int:
    rows = list(csv.DictReader(path.open()))
    subsets = sorted({row["subset"] for row in rows}, key=lambda s: (s != "selection", s))
    data = {s: [r for r in rows if r["subset"] == s] for s in subsets}
    print("| signals | fit | " + " | ".join(f"{s}: AUROC, MAE, least-confident" for s in subsets) + " |")
    print("|---|---|" + "---|" * len(subsets))
    for names in SETS:
        x = {s: np.array([[float(r[n]) for n in names] for r in data[s]]) for s in subsets}
        j = {s: np.array([float(r["jaccard"]) for r in data[s]]) for s in subsets}
        for fit in ("linear", "logistic"):
            if fit == "linear":
                weights, *_ = np.linalg.lstsq(np.c_[np.ones(len(j["selection"])), x["selection"]], j["selection"], rcond=None)
            else:
                weights = -logistic(x["selection"], (j["selection"] < 0.65).astype(float))
            score = {s: np.c_[np.ones(len(x[s])), x[s]] @ weights for s in subsets}
            order = np.argsort(score["selection"], kind="stable")
            knots = (score["selection"][order], np.clip(isotonic(j["selection"][order]), 0, 1))
            cells = []
            for s in subsets:
                predicted = np.interp(score[s], *knots)
                caught, failures = least_confident_failures(predicted, j[s])
                cells.append(f"{auroc_of_failures(score[s], j[s]):.3f}, {np.abs(predicted - j[s]).mean():.3f}, "
                             f"{caught}/{failures}")
            print(f"| {' + '.join(names)} | {fit} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
