"""Wall time of `<command> --help` for every dermseg command (a fresh Python process each, as a user runs it).

    python benchmarks/help_time.py --repeats 5 --json benchmarks/results/cli-help-<date>.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    commands = sorted(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"])
    bin_dir = Path(sys.executable).parent
    results = {}
    for command in commands:
        executable = shutil.which(command, path=str(bin_dir)) or command
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            subprocess.run([executable, "--help"], check=True, capture_output=True)
            times.append(time.perf_counter() - start)
        results[command] = {"median_s": statistics.median(times), "max_s": max(times), "runs": args.repeats}
        print(f"{command} --help: median {results[command]['median_s']:.2f} s, max {results[command]['max_s']:.2f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
