"""What every dermseg command shares: exit codes and the translation of typed errors into them."""

from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ..backends.options import ORT_PROVIDERS, PRECISIONS
from ..core.mask_options import POSTPROCESS_HELP, TTA_HELP, TTA_VIEWS, MaskOptions
from ..defaults import MAX_THREADS
from ..errors import (
    BackendUnavailableError,
    CheckFailedError,
    DermsegError,
    InputImageError,
    OutputWriteError,
    UserError,
)
from ..util.printable import printable
from ..util.stop_signals import EXIT_INTERRUPTED

EXIT_OK = 0
EXIT_SOME_INPUTS_FAILED = 1
EXIT_USAGE = 2
EXIT_CHECK_FAILED = 3
EXIT_UNAVAILABLE = 4
EXIT_INTERNAL = 70

EXIT_CODES: tuple[tuple[int, str], ...] = (
    (EXIT_OK, "all done"),
    (EXIT_SOME_INPUTS_FAILED, "some inputs failed (the rest done; each failure has an error line and a manifest row)"),
    (EXIT_USAGE, "usage or user error: bad flags (or a flag the model's backend does not use), a missing, unreadable, "
                 "malformed or hostile model file (one its runtime refuses included), missing input, an output that "
                 "cannot be written (a run that meets a full disk stops there, its manifest and summary written)"),
    (EXIT_CHECK_FAILED, "a check failed (export parity, tolerance, a training loss that became NaN)"),
    (EXIT_UNAVAILABLE, "a requested backend, device or precision is not available here (e.g. --device cuda without "
                       "CUDA), or the extra it needs is not installed (the line names the pip install)"),
    (EXIT_INTERNAL, "an internal error, a bug: of one image (that image's row says internal error; the others are done "
                    "first; --debug prints its traceback), of the whole command (the traceback is printed), or the "
                    "backend failing while running a batch (one line)"),
    (130, "interrupted by Ctrl-C (SIGINT): dermseg-run first finishes the current batch and writes the manifest"),
    (143, "stopped by SIGTERM, as by Ctrl-C (dermseg-train first saves model.last.pt at the current step); "
          "dermseg-serve, a service, drains its requests and exits 0 on either signal"),
)
"""Every command's exit codes and what each means (the documentation's table is made from this)."""

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
    """One line on stderr (control characters in it escaped: a file's name or text cannot forge another line)."""
    click.echo(f"error: {printable(message)}", err=True)


DEBUG_ENV = "DERMSEG_DEBUG"
"""Set to 1 to print the tracebacks of internal errors, as --debug does."""


def debug_option(command: F) -> F:
    """`--debug`: print the traceback of every internal error (an input that failed on an exception dermseg did not
    expect); the environment variable DERMSEG_DEBUG=1 does the same."""
    return click.option("--debug", is_flag=True,
                        help=f"Print the traceback of each internal error (a bug) for a bug report; {DEBUG_ENV}=1 "
                             "does the same.")(command)


def debugging(flag: bool) -> bool:
    """--debug, or DERMSEG_DEBUG=1 in the environment."""
    return flag or os.environ.get(DEBUG_ENV, "") not in ("", "0")


INTERNAL_HINT = "a bug in dermseg: run again with --debug for its traceback, and report it"


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


PRECISION_HELP = ("auto: each model's default (.pt fp32; .xml bf16 where the CPU has native BF16 units, AMX or "
                  "AVX-512 BF16, else fp32); fp32; fp16 (.pt on CUDA); bf16 (.pt or .xml on a CPU with native BF16).")
PROVIDER_HELP = ".onnx: ONNX Runtime execution provider (auto: CPU on the CPU, CUDA on a GPU)."


def backend_option_flags(command: F) -> F:
    """`--precision`, `--provider` and `--threads`: how a model file is run, the same on every command that runs one."""
    command = click.option("--threads", type=click.IntRange(1, MAX_THREADS), default=None,
                           help="Intra-op threads of ONNX Runtime, OpenVINO or PyTorch (default: theirs, one per "
                                "core).")(command)
    command = click.option("--provider", type=click.Choice(ORT_PROVIDERS), default="auto", show_default=True,
                           help=PROVIDER_HELP)(command)
    return click.option("--precision", type=click.Choice(PRECISIONS), default="auto", show_default=True,
                        help=PRECISION_HELP)(command)


def mask_option_flags(command: F) -> F:
    """`--tta` and `--postprocess`, the same on every command that makes masks (default: plain, as training
    validates)."""
    command = click.option("--postprocess", default="none", show_default=True, callback=check_postprocess_option,
                           help=POSTPROCESS_HELP)(command)
    return click.option("--tta", type=click.Choice(tuple(TTA_VIEWS)), default="none", show_default=True,
                        help=TTA_HELP)(command)


def model_or_shipped(model_path: Path | None) -> Path:
    """`--engine`'s file, or where none is given the model shipped with dermseg (checked against its SHA-256), said in
    one line: what it is, its licence, its card."""
    if model_path is not None:
        return model_path
    from ..model.shipped import shipped_model_path

    return shipped_model_path(lambda line: click.echo(printable(line), err=True))
