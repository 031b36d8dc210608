"""Fix the two syntax errors in tensorrt-stubs 10.13 so that mypy can read them (idempotent).

A parameter named `in` (a keyword) and `add_scale_nd`'s missing default after defaulted parameters.
"""

from __future__ import annotations

import re
import sys
import sysconfig
from pathlib import Path

STUB = Path(sysconfig.get_paths()["purelib"]) / "tensorrt_bindings" / "tensorrt.pyi"


def main() -> int:
    if not STUB.is_file():
        print(f"error: {STUB} not found; install it with: pip install --no-deps tensorrt-stubs", file=sys.stderr)
        return 1
    text = STUB.read_text(encoding="utf-8")
    fixed = re.sub(r"([(,] ?)in: ", r"\1in_: ", text)
    fixed = fixed.replace(
        "power: Weights = None, channel_axis: int)", "power: Weights = None, channel_axis: int = 0)"
    )
    if fixed != text:
        STUB.write_text(fixed, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
