"""Artefacts are written under a temp name, checked there, then moved to their final name only if the check
passed, else to their `.failed` name: a backend never loads an artefact whose check failed."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from ..tensorrt.sidecar import sidecar_path
from ..util.atomic import FILE_MODE, TEMP_PREFIX


class StagedArtefact:
    """A temp path beside `final` (a temp name that input discovery and stale-file cleanup recognise); `companions`
    are suffixes of files that travel with it under the same stem (an OpenVINO IR's `.bin`)."""

    def __init__(self, final: Path, failed: Path, companions: tuple[str, ...] = ()) -> None:
        self.final, self.failed, self.companions = final, failed, companions
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-", suffix=final.suffix, dir=final.parent)
        os.close(fd)
        self.temp = Path(name)

    def publish(self, passed: bool, with_sidecar: bool = False) -> Path:
        """Move the temp file (and its `.json` sidecar) to the final name if `passed`, else to the failed name.

        A file under the other name, left by an earlier export, is removed: after a failed check no artefact
        of an older export stays where a backend would load it as this checkpoint's.
        """
        target, other = (self.final, self.failed) if passed else (self.failed, self.final)
        os.chmod(self.temp, FILE_MODE)
        if with_sidecar:
            os.replace(sidecar_path(self.temp), sidecar_path(target))
        for suffix in self.companions:
            os.chmod(self.temp.with_suffix(suffix), FILE_MODE)
            os.replace(self.temp.with_suffix(suffix), target.with_suffix(suffix))
        os.replace(self.temp, target)
        remove_artefact(other, with_sidecar, self.companions)
        return target

    def discard(self) -> None:
        for path in (self.temp, sidecar_path(self.temp), *(self.temp.with_suffix(s) for s in self.companions)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def remove_artefact(path: Path, with_sidecar: bool = False, companions: tuple[str, ...] = ()) -> bool:
    """Delete `path` (and its sidecar and companions); True if there was something to delete."""
    removed = False
    victims = [path, *([sidecar_path(path)] if with_sidecar else []), *(path.with_suffix(s) for s in companions)]
    for victim in victims:
        with contextlib.suppress(FileNotFoundError):
            victim.unlink()
            removed = True
    return removed
