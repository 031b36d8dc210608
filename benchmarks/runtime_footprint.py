"""What deploying without PyTorch saves: disk, peak memory and time to the first mask of `dermseg-run` on the CPU,
in one run, for three ways of running the same ONNX model on the same images:

    runtime      the runtime install (`pip install dermseg`, no torch)
    full         the full install (torch installed; an ONNX model on the CPU never imports it)
    full+torch   the full install with torch imported first, as every run did before the host path was torch-free
                 (and as `.pt` models and `--device cuda` still do)

Each run is a fresh `dermseg-run --engine MODEL.onnx IMAGES` process; the first mask is seen by polling the output
folder; peak memory is the process's maximum resident set (`wait4`). Runs alternate between the variants, so all
see the same machine. `--fresh-install` also times a literal `pip install .` into a new venv and measures it.

usage: python benchmarks/runtime_footprint.py --engine MODEL.onnx --images DIR [--runtime-venv .venv-runtime]
       [--full-venv .venv] [--repeats 3] [--fresh-install] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
POLL_S = 0.002


def megabytes(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink()) / 1e6


def site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python3*/site-packages"))


def largest_packages(venv: Path, count: int = 8) -> dict[str, float]:
    """The largest top-level entries of the venv's site-packages, in MB."""
    sizes = {}
    for entry in site_packages(venv).iterdir():
        if entry.is_dir() and not entry.name.endswith((".dist-info", "__pycache__")):
            sizes[entry.name] = round(megabytes(entry), 1)
    return dict(sorted(sizes.items(), key=lambda item: -item[1])[:count])


WITH_TORCH = "import sys, torch; from dermseg_deploy.cli.run import main; sys.argv[0] = 'dermseg-run'; main()"


def variants(runtime: Path, full: Path) -> dict[str, tuple[Path, list[str]]]:
    """Each variant's venv and the command that starts its dermseg-run."""
    return {
        "runtime": (runtime, [str(runtime / "bin" / "dermseg-run")]),
        "full": (full, [str(full / "bin" / "dermseg-run")]),
        "full+torch": (full, [str(full / "bin" / "python"), "-c", WITH_TORCH]),
    }


def one_run(command: list[str], engine: Path, images: Path) -> dict[str, float]:
    """One dermseg-run process: seconds to its first mask and in all, and its peak resident memory in MB."""
    with tempfile.TemporaryDirectory(prefix="dermseg-footprint-") as folder:
        out = Path(folder) / "masks"
        env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
        start = time.perf_counter()
        process = subprocess.Popen([*command, "--engine", str(engine), str(images), "-o", str(out), "-q", "--device",
                                    "cpu"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        first = None
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)  # reaps it with its resource usage once it ends
            if pid:
                break
            if first is None and out.is_dir() and any(out.glob("*_segmentation.png")):
                first = time.perf_counter() - start
            time.sleep(POLL_S)
        total = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        stderr = process.stderr.read().decode() if process.stderr else ""
        if process.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed: {stderr[-2000:]}")
        if first is None:
            first = total
        return {"first_mask_s": first, "total_s": total, "peak_rss_mb": usage.ru_maxrss / 1024, "masks":
                len(list(out.glob("*_segmentation.png")))}


def fresh_install(python: str) -> dict[str, Any]:
    """`pip install .` into a new venv, as the README says: seconds and MB."""
    with tempfile.TemporaryDirectory(prefix="dermseg-fresh-venv-") as folder:
        venv = Path(folder) / "venv"
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        start = time.perf_counter()
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(ROOT)], check=True)
        seconds = time.perf_counter() - start
        return {"seconds": round(seconds, 1), "venv_mb": round(megabytes(venv), 1),
                "site_packages_mb": round(megabytes(site_packages(venv)), 1), "largest": largest_packages(venv),
                "has_torch": (site_packages(venv) / "torch").exists()}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", type=Path, required=True)
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--runtime-venv", type=Path, default=ROOT / ".venv-runtime")
    parser.add_argument("--full-venv", type=Path, default=ROOT / ".venv")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fresh-install", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    chosen = variants(args.runtime_venv.resolve(), args.full_venv.resolve())
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in chosen}
    for _ in range(args.repeats):
        for name, (_, command) in chosen.items():
            runs[name].append(one_run(command, args.engine.resolve(), args.images.resolve()))
    result: dict[str, Any] = {"engine": str(args.engine), "images": str(args.images), "repeats": args.repeats,
                              "cpu_count": os.cpu_count()}
    for name, (venv, _) in chosen.items():
        result[name] = {
            "venv_mb": round(megabytes(venv), 1), "site_packages_mb": round(megabytes(site_packages(venv)), 1),
            "largest": largest_packages(venv),
            **{f"median_{key}": round(statistics.median(run[key] for run in runs[name]), 3)
               for key in ("first_mask_s", "total_s", "peak_rss_mb")},
            "runs": runs[name],
        }
    if args.fresh_install:
        result["fresh_pip_install"] = fresh_install(shutil.which("python3") or sys.executable)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
