#!/usr/bin/env bash
# The runtime install on its own, as a user who only deploys gets it: a virtual environment with dermseg and its
# runtime dependencies only (`pip install dermseg`, no extras: no PyTorch). The tests drive its commands
# (tests/test_runtime_install.py) and benchmarks/runtime_footprint.py measures it.
#
#   scripts/runtime_venv.sh [VENV]     default: $DERMSEG_RUNTIME_VENV, else .venv-runtime
#
# dermseg's wheel is built from this tree on every call, without build isolation (the development venv's
# setuptools), into a wheelhouse kept in the user's cache ($DERMSEG_WHEELHOUSE, default
# ${XDG_CACHE_HOME:-~/.cache}/dermseg/wheelhouse), which also holds the runtime dependencies' wheels (fetched once
# per pyproject.toml); the venv is then installed from that wheelhouse alone (--no-index), as from a mirror. The
# last two lines printed: the venv, the wheel.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${1:-${DERMSEG_RUNTIME_VENV:-.venv-runtime}}
python=${PYTHON:-python3}
builder=.venv/bin/python
wheelhouse=${DERMSEG_WHEELHOUSE:-${XDG_CACHE_HOME:-$HOME/.cache}/dermseg/wheelhouse}
[ -x "$builder" ] || scripts/setup.sh
mkdir -p "$wheelhouse"
rm -f "$wheelhouse"/dermseg-*.whl
"$builder" -m pip wheel --quiet --no-deps --no-build-isolation --wheel-dir "$wheelhouse" . >/dev/null
wheel=$(ls "$wheelhouse"/dermseg-*.whl)
wanted=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$wheelhouse/.dependencies" 2>/dev/null)" != "$wanted" ]; then  # the runtime dependencies, as wheels, once
    "$builder" -m pip wheel --quiet --wheel-dir "$wheelhouse" "$wheel" >/dev/null
    echo "$wanted" > "$wheelhouse/.dependencies"
fi
stamp=$venv/.dermseg-runtime
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ] && "$venv/bin/python" -c "import sys" 2>/dev/null; then
    "$venv/bin/python" -m pip install --quiet --no-index --find-links "$wheelhouse" --no-deps --force-reinstall "$wheel"
else
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --no-index --find-links "$wheelhouse" "$wheel"
    echo "$wanted" > "$stamp"
fi
echo "$venv"
echo "$wheel"
