#!/usr/bin/env bash
# Create .venv (if missing) and install dermseg with its development tools into it.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[dev]"
# Type stubs for the TensorRT code (TensorRT itself is not needed): without its dependencies, which
# would pull TensorRT, then patched so that mypy can parse them.
.venv/bin/python -m pip install --quiet --no-deps "tensorrt-stubs==10.13.0.35.1"
.venv/bin/python scripts/patch_tensorrt_stubs.py
