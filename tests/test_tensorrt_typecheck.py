"""mypy checks the TensorRT code against tensorrt-stubs: a misspelt or removed TensorRT call must fail it.

The unchanged code passes the same mypy configuration in the test command (scripts/test.sh).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_mypy_with_shadow(source: Path, text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    shadow = tmp_path / source.name
    shadow.write_text(text)
    return subprocess.run(
        # A cache of its own: mypy's cache would otherwise reuse the result for the unchanged original file.
        [sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "cache"), "--shadow-file", str(source), str(shadow),
         str(source)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )


@pytest.mark.slow
@pytest.mark.parametrize("module,right,wrong", [
    ("tensorrt/engine_build.py", "parser.parse_from_file(", "parser.parse_from_fiel("),
    ("backends/tensorrt_backend.py", "context.execute_async_v3(", "context.execute_async_v2("),
])
def test_mypy_rejects_a_misspelt_tensorrt_call(module: str, right: str, wrong: str, tmp_path: Path) -> None:
    source = ROOT / "dermseg_deploy" / module
    text = source.read_text()
    assert right in text
    broken = run_mypy_with_shadow(source, text.replace(right, wrong), tmp_path)
    assert broken.returncode == 1, broken.stdout + broken.stderr
    wrong_name = wrong.rstrip("(").rsplit(".", 1)[-1]
    assert f'has no attribute "{wrong_name}"' in broken.stdout and module in broken.stdout
