"""A screenshot of the documentation site's home page in headless Chromium, for the README.

usage: python benchmarks/site_screenshot.py --out docs/images/site-home.png
Builds the site (strict) into a temporary folder and opens its index.html from disk: the site works offline.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from PIL import Image  # noqa: E402

from tests.browser import file_url, start_chromium  # noqa: E402

QUIET_MKDOCS = {"NO_MKDOCS_2_WARNING": "1", "DISABLE_MKDOCS_2_WARNING": "true"}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="the PNG to write")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=860)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        site = Path(folder) / "site"
        subprocess.run([str(Path(sys.executable).with_name("mkdocs")), "build", "--strict", "--quiet", "-d", str(site)],
                       cwd=ROOT, check=True, env={**os.environ, **QUIET_MKDOCS})
        chromium = start_chromium()
        driver = next(chromium)
        try:
            driver.set_window_size(args.width, args.height)
            driver.get(file_url(site / "index.html"))
            png = driver.get_screenshot_as_png()
        finally:
            chromium.close()
    with Image.open(io.BytesIO(png)) as picture:
        picture = picture.convert("RGB").quantize(colors=128)  # a screenshot of text: small as a palette PNG
        temporary = args.out.with_name(args.out.name + ".tmp")
        picture.save(temporary, format="PNG", optimize=True)
        temporary.replace(args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e3:.0f} kB)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
