"""Atomic file writes: a temp file in the target folder, fsync, then `os.replace`."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


FILE_MODE = 0o666 & ~_umask()
"""Permissions of written files: what `open()` would give (mkstemp's temp files are 0600)."""
FOLDER_MODE = 0o777 & ~_umask()
"""Permissions of folders built under a temp name: what `mkdir()` would give (mkdtemp's are 0700)."""
TEMP_PREFIX = ".dermseg-tmp-"
"""Temp files start with this and the writing process's id; input discovery never takes them as images."""


def is_temp_file(path: Path) -> bool:
    return path.name.startswith(TEMP_PREFIX)


@contextlib.contextmanager
def atomic_open(path: str | Path, make_folder: bool = True) -> Iterator[BinaryIO]:
    """Open a temp file beside `path` for binary writing; on success it replaces `path`, else it is removed.

    `make_folder=False`: a missing folder is a FileNotFoundError, not created (a run's output folder deleted
    mid-run must not come back silently)."""
    path = Path(path)
    if make_folder:
        path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-", suffix=path.suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | Path, data: bytes, make_folder: bool = True) -> None:
    """Write `data` to `path` so that readers see the old file or the whole new one, never a part."""
    with atomic_open(path, make_folder) as handle:
        handle.write(data)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temp_files(folder: Path, recursive: bool = True) -> list[Path]:
    """Delete temp files (and temp folders) in (or under) `folder` left by processes that no longer run; return them."""
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    pattern = f"{TEMP_PREFIX}*"
    for path in folder.rglob(pattern) if recursive else folder.glob(pattern):
        pid_text = path.name[len(TEMP_PREFIX) :].split("-", 1)[0]
        if pid_text.isdigit() and int(pid_text) != os.getpid() and not _process_alive(int(pid_text)):
            with contextlib.suppress(FileNotFoundError):
                if path.is_dir() and not path.is_symlink():  # a report folder being built (evaluation.report)
                    shutil.rmtree(path)
                else:
                    path.unlink()
                removed.append(path)
    return removed
