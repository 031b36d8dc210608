"""CPU and wall time of a training process, its data-loader processes included, across stops and resumes.

CPU time is this process's own (every thread) plus that of its children: those that have ended (`RUSAGE_CHILDREN`,
which counts loader processes once they are joined at an epoch's end) and those still running (read from
`/proc/<pid>/stat` on Linux, so a run stopped mid-epoch counts its live loaders too).
"""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path

_TICKS_PER_S = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _live_children_cpu_s() -> float:
    """CPU seconds of this process's running children (0 where /proc is not there)."""
    total = 0.0
    try:
        tasks = list(Path(f"/proc/{os.getpid()}/task").iterdir())
    except OSError:
        return 0.0
    for task in tasks:
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for pid in children:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue  # ended between the two reads: RUSAGE_CHILDREN counts it once it is waited for
            total += (int(fields[11]) + int(fields[12])) / _TICKS_PER_S  # utime, stime (fields 14, 15 of stat)
    return total


def process_cpu_s() -> float:
    """CPU seconds used so far by this process and its children, ended or running."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    ended = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + ended.ru_utime + ended.ru_stime + _live_children_cpu_s()


class ProcessClock:
    """Seconds since `start`, on top of what earlier sessions of the same run used (`cpu_s_before`,
    `wall_s_before`, from the resumed checkpoint)."""

    def __init__(self, cpu_s_before: float = 0.0, wall_s_before: float = 0.0) -> None:
        self.cpu_s_before, self.wall_s_before = cpu_s_before, wall_s_before
        self._cpu_start, self._wall_start = process_cpu_s(), time.monotonic()

    def cpu_s_this_session(self) -> float:
        """CPU seconds of this process and its children since `start`."""
        return process_cpu_s() - self._cpu_start

    def cpu_s(self) -> float:
        """Cumulative CPU seconds of the run (this process's share, where several train together)."""
        return self.cpu_s_before + self.cpu_s_this_session()

    def wall_s(self) -> float:
        """Cumulative wall seconds of the run."""
        return self.wall_s_before + time.monotonic() - self._wall_start
