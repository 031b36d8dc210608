#!/usr/bin/env bash
# Create .venv (if missing) and install dermseg with its development tools into it. The first run downloads
# about 6 GB (torch's CUDA build) and takes minutes; later runs skip the install while pyproject.toml is
# unchanged (a stamp in .venv records what was installed).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
stamp=.venv/.dermseg-installed
apt=""  # Debian's packages below, where apt (and root) is available
if command -v apt-get >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then apt="apt-get"; elif sudo -n true 2>/dev/null; then apt="sudo apt-get"; fi
fi
# A real browser for the page tests (tests/test_pages.py, tests/test_web_page.py): Debian's Chromium and its driver
# (about a minute the first time). Without them those tests skip and say why; under CI they fail.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    if [ -n "$apt" ]; then
        echo "setup: installing Chromium and chromedriver for the page tests (apt, about a minute)"
        $apt update -qq && DEBIAN_FRONTEND=noninteractive $apt install -y -qq chromium chromium-driver >/dev/null
    else
        echo "setup: no apt (or no root): install Chromium and chromedriver yourself, or the page tests skip"
    fi
fi
# ONNX Runtime Web for `dermseg-export --formats web` and its page test: npm (Debian's, where apt is available).
if ! command -v npm >/dev/null 2>&1 && [ -n "$apt" ]; then
    echo "setup: installing npm for the in-browser page (apt)"
    $apt update -qq && DEBIAN_FRONTEND=noninteractive $apt install -y -qq npm >/dev/null
fi
fetch_web_runtime() {  # the pinned onnxruntime-web tarball into the user's cache, checked (seconds; once)
    .venv/bin/python -c "from dermseg_deploy.export.web_folder import runtime_tarball; runtime_tarball()" 2>/dev/null \
        || echo "setup: ONNX Runtime Web could not be fetched with npm: --formats web and its page test need it"
}
wanted=$(sha256sum pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
    echo "setup: .venv is up to date (delete $stamp to reinstall)"
    .venv/bin/python -c "from dermseg_deploy.util.cpu import fastest_engine_line as f; print('setup: ' + f())"
    fetch_web_runtime
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
.venv/bin/python -c "from dermseg_deploy.util.cpu import fastest_engine_line as f; print('setup: ' + f())"
fetch_web_runtime
