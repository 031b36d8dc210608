"""What every dermseg command shares: exit codes and the translation of typed errors into them."""

from __future__ import annotations

import functools
import sys
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

import click

from ..core.mask_options import POSTPROCESS_HELP, TTA_HELP, TTA_VIEWS, MaskOptions
from ..errors import (
    BackendUnavailableError,
    CheckFailedError,
    DermsegError,
    InputImageError,
    OutputWriteError,
    UserError,
)
from ..util.stop_signals import EXIT_INTERRUPTED

EXIT_OK = 0
EXIT_SOME_INPUTS_FAILED = 1
EXIT_USAGE = 2
EXIT_CHECK_FAILED = 3
EXIT_UNAVAILABLE = 4
EXIT_INTERNAL = 70

EXIT_CODE_BY_ERROR: tuple[tuple[type[DermsegError], int], ...] = (
    (CheckFailedError, EXIT_CHECK_FAILED),
    (BackendUnavailableError, EXIT_UNAVAILABLE),
    (UserError, EXIT_USAGE),
    (OutputWriteError, EXIT_USAGE),
    (InputImageError, EXIT_USAGE),
)

F = TypeVar("F", bound=Callable[..., Any])


def exit_code_for(error: DermsegError) -> int:
    for error_type, code in EXIT_CODE_BY_ERROR:
        if isinstance(error, error_type):
            return code
    return EXIT_INTERNAL


def error_line(message: str) -> None:
    """One line on stderr."""
    click.echo(f"error: {message}", err=True)


def handle_errors(command: F) -> F:
    """Turn typed errors into one line and their exit code; anything else keeps its traceback and exits 70."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except DermsegError as exc:
            error_line(str(exc))
            sys.exit(exit_code_for(exc))
        except KeyboardInterrupt as exc:  # a second SIGINT or SIGTERM (StopNow) carries its own exit status
            error_line(f"interrupted ({exc})" if str(exc) else "interrupted")
            sys.exit(getattr(exc, "exit_code", EXIT_INTERRUPTED))
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except Exception:
            traceback.print_exc()
            error_line("internal error (a bug in dermseg); the traceback is above")
            sys.exit(EXIT_INTERNAL)

    return wrapper  # type: ignore[return-value]


def check_postprocess_option(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """A click callback: every `--postprocess` value (one, or a tuple of repeated ones) names known steps."""
    for text in value if isinstance(value, tuple) else (value,):
        try:
            MaskOptions.parse("none", text)
        except UserError as exc:
            raise click.BadParameter(str(exc)) from exc
    return value


def mask_option_flags(command: F) -> F:
    """`--tta` and `--postprocess`, the same on every command that makes masks (default: plain, as training
    validates)."""
    command = click.option("--postprocess", default="none", show_default=True, callback=check_postprocess_option,
                           help=POSTPROCESS_HELP)(command)
    return click.option("--tta", type=click.Choice(tuple(TTA_VIEWS)), default="none", show_default=True,
                        help=TTA_HELP)(command)
