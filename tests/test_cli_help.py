"""Every command's --help: fast (nothing heavy imported before parsing) and complete (every option explained)."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import click
import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
HEAVY = ("torch", "torchvision", "onnxruntime", "onnx", "ray", "tensorrt", "matplotlib")


def _command(target: str) -> click.Command:
    module, name = target.split(":")
    command = getattr(importlib.import_module(module), name)
    assert isinstance(command, click.Command)
    return command


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_imports_nothing_heavy(name: str) -> None:
    module, attribute = COMMANDS[name].split(":")
    code = (f"import sys\nfrom {module} import {attribute} as command\n"
            "try:\n    command.main(['--help'], prog_name='x')\nexcept SystemExit:\n    pass\n"
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    completed = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert "Usage:" in completed.stdout
    assert completed.stdout.strip().splitlines()[-1] == "[]", f"{name} --help imported {completed.stdout.splitlines()[-1]}"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_option_has_help_text(name: str) -> None:
    command = _command(COMMANDS[name])
    bare = [param.name for param in command.params
            if isinstance(param, click.Option) and not (param.help or "").strip()]
    assert not bare, f"{name}: options without help text: {bare}"
