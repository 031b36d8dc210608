#!/usr/bin/env bash
# Set up (if needed), then lint, type-check and run every test. Extra arguments go to pytest,
# e.g. `scripts/test.sh -m "not slow"` to leave out the slow tests locally.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
