"""Time per image of the in-browser page (`dermseg-export --formats web`) in headless Chromium, single-threaded (a
plain static server) and cross-origin isolated (a static server that sends COOP/COEP, as `dermseg-serve` does at
/local/), beside the Python runtime on one thread for the same images in the same run; and a screenshot of the
page for the docs.

usage: python benchmarks/web_page.py [--images DIR] [--limit N] [--repeats R] --json OUT.json [--screenshot OUT.jpg]

Images: the 8 samples, and the first N of DIR (e.g. ../shared/data/isic2017-fullres/ISIC-2017_Validation_Data). The
page's time is its own `performance.now()` from the file's bytes to the drawn mask (decode, preprocess, inference,
postprocess); the median of R runs per image. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.page_screenshots import page_screenshot  # noqa: E402
from dermseg_deploy.export.web_folder import ORT_WEB_VERSION, write_web_folder  # noqa: E402
from dermseg_deploy.model.shipped import verified_shipped_model  # noqa: E402
from dermseg_deploy.samples import sample_image_paths  # noqa: E402
from dermseg_deploy.scale.serve_front import ISOLATION_HEADERS  # noqa: E402
from dermseg_deploy.segment.segmenter import Segmenter  # noqa: E402
from dermseg_deploy.util.cpu import cpu_record  # noqa: E402
from tests.browser import serve_folder, start_chromium, wait_for  # noqa: E402


def static_server(folder: Path, isolated: bool) -> tuple[Any, str]:
    server, base = serve_folder(folder, ISOLATION_HEADERS if isolated else None)  # the headers dermseg-serve sends
    return server, f"{base}/index.html"


def page_times(driver: Any, url: str, images: list[Path], repeats: int) -> tuple[str, dict[str, dict[str, float]]]:
    """The page's settings line for its runtime, and per image the median of each stage (ms) over `repeats` runs."""
    driver.get(url)
    wait_for(lambda: driver.execute_script("return document.body.getAttribute('data-ready')"), 180, "the page")
    runtime = driver.execute_script("return [...document.querySelectorAll('#settings tr')]"
                                    ".map(r => r.innerText).find(t => t.startsWith('runtime'))")
    times: dict[str, dict[str, float]] = {}
    for path in images:
        runs = []
        for _ in range(repeats):
            driver.execute_script("document.body.removeAttribute('data-state'); document.getElementById('file').value = ''")
            driver.find_element("id", "file").send_keys(str(path.resolve()))
            state = wait_for(lambda: driver.execute_script(
                "const s = document.body.getAttribute('data-state'); return s !== 'busy' && s"), 300, path.name)
            if state != "done":
                raise SystemExit(f"{path.name}: {driver.find_element('id', 'error').text}")
            runs.append(driver.execute_script("return window.dermseg.ms"))
        times[path.name] = {stage: statistics.median(run[stage] for run in runs) for stage in runs[0]}
    return runtime, times


def python_times(images: list[Path], repeats: int) -> dict[str, float]:
    """The Python runtime (ONNX Runtime, one thread, full decode, as the page decodes): ms per image, median."""
    times = {}
    with Segmenter.open(None, "cpu", threads=1, reduced_jpeg=False) as segmenter:
        segmenter.segment(images[0])
        for path in images:
            runs = []
            for _ in range(repeats):
                started = time.perf_counter()
                segmenter.segment(path, quality=True)
                runs.append(1000 * (time.perf_counter() - started))
            times[path.name] = statistics.median(runs)
    return times


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path)
    parser.add_argument("--limit", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument("--screenshot", type=Path)
    args = parser.parse_args(argv)
    images = list(sample_image_paths())
    if args.images:
        images += sorted(p for p in args.images.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[: args.limit]
    with tempfile.TemporaryDirectory() as scratch:
        web = write_web_folder(verified_shipped_model().path, Path(scratch) / "page")
        chromium = start_chromium()
        driver = next(chromium)
        results: dict[str, Any] = {}
        try:
            for name, isolated in (("single_thread", False), ("cross_origin_isolated", True)):
                server, url = static_server(web.folder, isolated)
                try:
                    runtime, times = page_times(driver, url, images, args.repeats)
                finally:
                    server.shutdown()
                results[name] = {"runtime": runtime, "ms": times}
                print(f"{name}: {runtime}", file=sys.stderr)
            if args.screenshot:
                args.screenshot.parent.mkdir(parents=True, exist_ok=True)
                server, url = static_server(web.folder, False)
                try:
                    driver.set_window_size(1000, 1000)
                    page_times(driver, url, [sample_image_paths()[0]], 1)
                    page_screenshot(driver, args.screenshot, 1000, 1600)
                finally:
                    server.shutdown()
        finally:
            chromium.close()
    results["python_onnxruntime_1_thread_ms"] = python_times(images, args.repeats)
    summary = {}
    for name in ("single_thread", "cross_origin_isolated"):
        totals = {image: stages["total"] for image, stages in results[name]["ms"].items()}
        summary[name] = {"median_total_ms": statistics.median(totals.values()),
                         "median_ratio_to_python_1_thread": statistics.median(
                             totals[image] / results["python_onnxruntime_1_thread_ms"][image] for image in totals)}
    results["summary"] = summary
    results["settings"] = {"images": [p.name for p in images], "repeats": args.repeats,
                           "model": verified_shipped_model().path.name, "onnxruntime_web": ORT_WEB_VERSION,
                           "cpu": cpu_record(), "machine": platform.machine(),
                           "command": "python benchmarks/web_page.py " + " ".join(argv)}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
