#!/usr/bin/env bash
# Create .venv (if missing) and install dermseg with its development tools into it. The first run downloads
# about 6 GB (torch's CUDA build) and takes minutes; later runs skip the install while pyproject.toml is
# unchanged (a stamp in .venv records what was installed).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
stamp=.venv/.dermseg-installed
wanted=$(sha256sum pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
    echo "setup: .venv is up to date (delete $stamp to reinstall)"
    exit 0
fi
start=$SECONDS
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv with $("$python" --version)"
    "$python" -m venv .venv
fi
echo "setup: installing dermseg and its dependencies into .venv (first time: several minutes, about 6 GB) ..."
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --progress-bar on -e ".[dev]" | sed '/^Requirement already satisfied/d'
# Type stubs for the TensorRT code (TensorRT itself is not needed): without its dependencies, which
# would pull TensorRT, then patched so that mypy can parse them.
echo "setup: TensorRT type stubs (for mypy)"
.venv/bin/python -m pip install --quiet --no-deps "tensorrt-stubs==10.13.0.35.1"
.venv/bin/python scripts/patch_tensorrt_stubs.py
echo "$wanted" > "$stamp"
echo "setup: done in $((SECONDS - start)) s"
