"""Typed errors. Library code raises these; only the CLI prints them and picks exit codes."""

from __future__ import annotations


class DermsegError(Exception):
    """Base of every error dermseg raises on purpose."""


def one_line(exc: BaseException) -> str:
    """The whole message of an exception (a library's, often several lines) on one line."""
    return " ".join(str(exc).split())


class UserError(DermsegError):
    """Bad usage or bad user-supplied files: missing or unreadable model, bad flags, missing input (exit 2)."""


class ModelFileError(UserError):
    """A model file (checkpoint, ONNX, plan) is missing, corrupt, untrusted or inconsistent."""


class InputImageError(DermsegError):
    """One input image cannot be used; the run goes on with the others (exit 1 at the end)."""

    kind = "unusable"
    """What is wrong, for callers that answer differently (an HTTP service: 400; 413 for `too_large`; 500 for
    `nonfinite_logits`)."""

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason

    def __reduce__(self) -> tuple[object, ...]:  # picklable with its two arguments (Ray ships errors between processes)
        return (type(self), (self.path, self.reason))


INTERNAL_KIND = "internal"
"""The error kind of an input that failed on an exception dermseg did not expect (a bug): the run goes on, its row
says `internal error (...)`, and the command exits 70 at the end (`--debug` prints the tracebacks)."""


def internal_reason(exc: BaseException) -> str:
    """An unexpected exception as one line, for the input it happened on: `internal error (TypeError: ...)`."""
    return f"internal error ({type(exc).__name__}: {one_line(exc)})"


class ImageTooLargeError(InputImageError):
    """An image over the pixel limit (a decompression bomb, or simply too big to decode safely)."""

    kind = "too_large"


class NonFiniteLogitsError(InputImageError):
    """The model gave NaN or infinite logits for an image: no mask can be trusted (the model's fault, not the
    image's; the other images go on)."""

    kind = "nonfinite_logits"


class OutputFolderGoneError(InputImageError):
    """The output folder of an image disappeared during the run: its mask was not written (and the folder is not
    silently recreated)."""

    kind = "not_written"


class OutputWriteError(DermsegError):
    """An output file could not be written (full disk, read-only folder)."""


class CheckFailedError(DermsegError):
    """A numerical check (parity, tolerance) failed (exit 3)."""


class BackendUnavailableError(DermsegError):
    """A requested backend, device or precision is not available here (exit 4)."""


class InferenceError(DermsegError):
    """The backend failed while running a batch (a GPU fault, a failed TensorRT execution): not an input's fault
    and not a usage error (exit 70)."""
