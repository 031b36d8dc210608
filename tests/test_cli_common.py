from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from dermseg_deploy.cli import bench as cli_bench
from dermseg_deploy.cli import eval as eval_cli
from dermseg_deploy.cli import export as cli_export
from dermseg_deploy.cli import run as cli_run
from dermseg_deploy.cli import serve as cli_serve
from dermseg_deploy.cli.common import exit_code_for, handle_errors
from dermseg_deploy.errors import (
    BackendUnavailableError,
    CheckFailedError,
    InputImageError,
    ModelFileError,
    OutputWriteError,
    UserError,
)
from dermseg_train import cli as train_cli

COMMANDS = {"dermseg-run": cli_run.main, "dermseg-export": cli_export.main, "dermseg-train": train_cli.main,
            "dermseg-eval": eval_cli.main, "dermseg-bench": cli_bench.main, "dermseg-serve": cli_serve.main}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_help_and_version(name: str) -> None:
    command = COMMANDS[name]
    assert CliRunner().invoke(command, ["--help"]).exit_code == 0
    version = CliRunner().invoke(command, ["--version"])
    assert version.exit_code == 0 and version.output.startswith(f"{name}, version ")


def test_exit_codes_follow_the_table() -> None:
    assert exit_code_for(UserError("x")) == 2
    assert exit_code_for(ModelFileError("x")) == 2
    assert exit_code_for(OutputWriteError("x")) == 2
    assert exit_code_for(InputImageError("f", "x")) == 2
    assert exit_code_for(CheckFailedError("x")) == 3
    assert exit_code_for(BackendUnavailableError("x")) == 4


def test_unexpected_errors_keep_their_traceback_and_exit_70() -> None:
    @click.command()
    @handle_errors
    def broken() -> None:
        raise RuntimeError("a bug")

    result = CliRunner().invoke(broken, [])
    assert result.exit_code == 70
    assert "Traceback" in result.stderr and "RuntimeError: a bug" in result.stderr
