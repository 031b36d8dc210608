#!/usr/bin/env bash
# The runtime install on its own, as a user who only deploys gets it: a virtual environment with dermseg and its
# runtime dependencies only (`pip install dermseg`, no extras: no PyTorch). The tests drive its commands
# (tests/test_runtime_install.py) and benchmarks/runtime_footprint.py measures it.
#
#   scripts/runtime_venv.sh [VENV]     default: $DERMSEG_RUNTIME_VENV, else .venv-runtime
#
# The dependencies are installed once per pyproject.toml (a stamp records it); dermseg itself is rebuilt as a wheel
# from this tree with the development venv's setuptools and reinstalled on every call, so the venv runs this code.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${1:-${DERMSEG_RUNTIME_VENV:-.venv-runtime}}
python=${PYTHON:-python3}
builder=.venv/bin/python
[ -x "$builder" ] || scripts/setup.sh
wheels=$(mktemp -d)
trap 'rm -rf "$wheels"' EXIT
"$builder" -m pip wheel --quiet --no-deps --no-build-isolation --wheel-dir "$wheels" . >/dev/null
wheel=$(ls "$wheels"/dermseg-*.whl)
stamp=$venv/.dermseg-runtime
wanted=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ] && "$venv/bin/python" -c "import sys" 2>/dev/null; then
    "$venv/bin/python" -m pip install --quiet --no-deps --force-reinstall "$wheel"
else
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet "$wheel"
    echo "$wanted" > "$stamp"
fi
echo "$venv"
