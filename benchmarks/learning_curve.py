"""The long recipe's learning curve: every scored epoch of a run's log against the run's cumulative CPU-hours, as a CSV
and a PNG, with the 30-minute preset's final scores as points beside it.

usage: python benchmarks/learning_curve.py RUN/model.log.jsonl --csv OUT.csv --png OUT.png
       [--preset-point LABEL:CPU_HOURS:SELECTION_J:REPORTING_J:FULLRES_J ...]

Columns: epoch, size_px, cpu_hours, wall_hours, train_loss, and per set (the selection half, which chose the epochs;
the reporting half and every --log-scores-on folder, logged only) and per weights (ema: the average the run keeps;
raw: the trained weights) the Jaccard and the thresholded Jaccard, empty where the epoch did not score that set.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any


def scored_epochs(log: Path) -> list[dict[str, Any]]:
    records = []
    for line in log.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "epoch" in record and "validation" in record and "cpu_seconds" in record:
            records.append(record)
    return records


def rows(records: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    sets = sorted({name for r in records for name in r.get("logged_scores", {})})
    columns = ["epoch", "size_px", "cpu_hours", "wall_hours", "train_loss"]
    for name in ["selection", *sets]:
        for weights in ("ema", "raw"):
            columns += [f"{name}_{weights}_jaccard", f"{name}_{weights}_thresholded"]
    table = []
    for record in records:
        row: dict[str, Any] = {"epoch": record["epoch"], "size_px": record["size_px"],
                               "cpu_hours": round(record["cpu_seconds"] / 3600, 4),
                               "wall_hours": round(record["wall_seconds"] / 3600, 4),
                               "train_loss": round(record["train_loss"], 5)}
        ema = record.get("weights") == "ema"
        selection = {"ema" if ema else "raw": record["validation"]["all"]}
        if "validation_raw" in record:
            selection["raw"] = record["validation_raw"]["all"]
        for name, by_weights in [("selection", selection), *record.get("logged_scores", {}).items()]:
            for weights, scores in by_weights.items():
                row[f"{name}_{weights}_jaccard"] = round(scores["jaccard"], 5)
                row[f"{name}_{weights}_thresholded"] = round(scores["thresholded_jaccard"], 5)
        table.append(row)
    return columns, table


def plot(columns: list[str], table: list[dict[str, Any]], points: list[tuple[str, float, list[float]]],
         path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    sets = [c[: -len("_ema_jaccard")] for c in columns if c.endswith("_ema_jaccard")]
    figure, axes = plt.subplots(1, len(sets), figsize=(5.0 * len(sets), 4.2), dpi=100, sharey=True)
    for axis, name, index in zip(axes if len(sets) > 1 else [axes], sets, range(len(sets))):
        for weights, style in (("ema", "-"), ("raw", ":")):
            xs = [r["cpu_hours"] for r in table if f"{name}_{weights}_jaccard" in r]
            ys = [r[f"{name}_{weights}_jaccard"] for r in table if f"{name}_{weights}_jaccard" in r]
            axis.plot(xs, ys, style, marker="o", markersize=3, label=f"{weights} Jaccard")
            ys = [r[f"{name}_{weights}_thresholded"] for r in table if f"{name}_{weights}_thresholded" in r]
            axis.plot(xs, ys, style, marker="s", markersize=3, label=f"{weights} thresholded")
        for label, hours, values in points:
            if index < len(values) and values[index] == values[index]:
                axis.scatter([hours], [values[index]], marker="*", s=120, color="black", zorder=5, label=label)
        axis.set_title(name.replace("_", " "))
        axis.set_xlabel("CPU-hours")
        axis.grid(alpha=0.3)
    (axes[0] if len(sets) > 1 else axes).set_ylabel("mean over images")
    (axes[0] if len(sets) > 1 else axes).legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log", type=Path)
    parser.add_argument("--csv", type=Path, required=True)
    parser.add_argument("--png", type=Path, default=None)
    parser.add_argument("--preset-point", action="append", default=[],
                        help="LABEL:CPU_HOURS:J1:J2:...: a point per set, in the CSV's order of sets")
    args = parser.parse_args(argv)
    columns, table = rows(scored_epochs(args.log))
    with args.csv.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(table)
    points = []
    for text in args.preset_point:
        label, hours, *values = text.split(":")
        points.append((label, float(hours), [float(v) if v else float("nan") for v in values]))
    if args.png is not None:
        plot(columns, table, points, args.png)
    print(f"{len(table)} scored epochs -> {args.csv}" + (f", {args.png}" if args.png else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
