#!/usr/bin/env bash
# Build the documentation site into site/ (strict: a broken link, a missing page or reference fails), or serve it
# locally with `scripts/docs.sh serve` (http://127.0.0.1:8000, rebuilt on every change). Needs scripts/setup.sh first.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-build}" = serve ]; then
    exec .venv/bin/mkdocs serve --strict "${@:2}"
fi
exec .venv/bin/mkdocs build --strict "${@:2}"
