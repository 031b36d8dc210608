"""Where a long run stands (benchmarks/long_run.sh status): epoch, CPU-hours, the last selection-half score, the ETA.

usage: python benchmarks/long_run_status.py RUN_DIR [--state TEXT]
Reads RUN_DIR/model.log.jsonl (a line per epoch and per start, as dermseg-train writes it); says so, and exits 1,
where the folder is gone.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def read_records(log: Path) -> list[dict[str, Any]]:
    """The log's lines that are epochs (`epoch` and `wall_seconds` present), in order; other events are skipped."""
    records = []
    for line in log.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a killed process
        if isinstance(record, dict) and "epoch" in record and "wall_seconds" in record:
            records.append(record)
    return records


def planned(log: Path) -> tuple[list[tuple[int, int]], float]:
    """The run's stages as (size_px, epochs) and its budget in wall-hours, from the config its last start logged."""
    config: dict[str, Any] = {}
    for line in log.read_text(encoding="utf-8").splitlines():
        if line.startswith('{"started"'):
            try:
                config = json.loads(line)["started"]["config"]
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
    return [(s["size_px"], s["epochs"]) for s in config.get("stages", [])], float(config.get("budget_hours") or 0.0)


def eta_hours(records: list[dict[str, Any]], stages: list[tuple[int, int]], budget_h: float) -> float | None:
    """Wall-hours left: the epochs left, each as long as the last ones at its size were (or, for a later size, as the
    last epoch scaled by the pixel count), capped by the budget; None before the first epoch."""
    if not records:
        return None
    last = records[-1]
    if last.get("ended_by_budget"):
        return 0.0
    durations: dict[int, list[float]] = {}
    previous = 0.0
    for record in records:
        durations.setdefault(record["size_px"], []).append(record["wall_seconds"] - previous)
        previous = record["wall_seconds"]
    recent = durations[last["size_px"]][-3:]
    per_epoch = sum(recent) / len(recent)
    left_s = 0.0
    for index, (size, epochs) in enumerate(stages):
        if index < last["stage"]:
            continue
        done = last["epoch_in_stage"] if index == last["stage"] else 0
        seconds = per_epoch * (size / last["size_px"]) ** 2
        if durations.get(size):
            seconds = sum(durations[size][-3:]) / len(durations[size][-3:])
        left_s += max(0, epochs - done) * seconds
    if budget_h:
        left_s = min(left_s, max(0.0, budget_h * 3600 - last["wall_seconds"]))
    return left_s / 3600


def describe(run_dir: Path, state: str) -> str:
    log = run_dir / "model.log.jsonl"
    if not run_dir.is_dir():
        return (f"no run folder at {run_dir}: it is gone (a new machine?) or never started; "
                "benchmarks/long_run.sh resume starts again")
    if not log.is_file():
        return f"{run_dir}: {state}; no epoch logged yet"
    records = read_records(log)
    if not records:
        return f"{run_dir}: {state}; no epoch finished yet"
    stages, budget_h = planned(log)
    last = records[-1]
    lines = [f"{run_dir}: {state}",
             f"epoch {last['epoch']} (stage {last['stage'] + 1} of {len(stages)}, at {last['size_px']} px, "
             f"{last['epoch_in_stage']} of {stages[last['stage']][1] if last['stage'] < len(stages) else '?'} in the stage), "
             f"{last['cpu_seconds'] / 3600:.2f} CPU-hours, {last['wall_seconds'] / 3600:.2f} wall-hours"
             + (f" of a budget of {budget_h:g}" if budget_h else "")]
    scored = [r for r in records if "validation" in r]
    if scored:
        best = max(scored, key=lambda r: r["validation"]["all"]["jaccard"])
        v = scored[-1]["validation"]["all"]
        text = (f"last selection-half score (epoch {scored[-1]['epoch']}, {scored[-1].get('weights', 'trained')} "
                f"weights): jaccard {v['jaccard']:.4f}, thresholded {v['thresholded_jaccard']:.4f}")
        raw = scored[-1].get("validation_raw", {}).get("all")
        if raw:
            text += f"; trained weights {raw['jaccard']:.4f} / {raw['thresholded_jaccard']:.4f}"
        lines.append(text + f"; best: epoch {best['epoch']}, jaccard {best['validation']['all']['jaccard']:.4f}")
    eta = eta_hours(records, stages, budget_h)
    if last.get("ended_by_budget"):
        lines.append("finished: the budget is spent")
    elif eta is not None:
        lines.append(f"ETA: about {eta:.1f} wall-hours of training left at this pace")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--state", default="not running")
    args = parser.parse_args()
    text = describe(args.run_dir, args.state)
    print(text)
    sys.exit(1 if text.startswith("no run folder") else 0)


if __name__ == "__main__":
    main()
