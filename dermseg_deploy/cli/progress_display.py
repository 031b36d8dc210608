"""Progress of long steps on stderr: tqdm bars on a terminal; plain lines elsewhere (a log, CI, a pipe), each with the
count, the time so far and an estimate of the time left, at most every 10% or 30 s."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import IO, Any

from tqdm import tqdm

LINE_EVERY_S = 30.0
LINE_EVERY_SHARE = 0.10


def clock(seconds: float) -> str:
    minutes, rest = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{rest:02d}" if hours else f"{minutes}:{rest:02d}"


@dataclass
class _Line:
    started: float
    total: int
    last_time: float = 0.0
    last_done: int = 0


@dataclass
class ProgressDisplay:
    """`update(what, done, total)` from the work; `close()` when a step ends (its bars or lines finish)."""

    stream: IO[str] = field(default_factory=lambda: sys.stderr)
    terminal: bool | None = None
    bars: dict[str, Any] = field(default_factory=dict)
    lines: dict[str, _Line] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.terminal is None:
            self.terminal = bool(getattr(self.stream, "isatty", lambda: False)())

    def update(self, what: str, done: int, total: int) -> None:
        if self.terminal:
            self._bar(what, done, total)
        else:
            self._line(what, done, total)

    def _bar(self, what: str, done: int, total: int) -> None:
        if what not in self.bars:
            unit = "img" if total > 1 else "step"
            self.bars[what] = tqdm(total=total, desc=what, unit=unit, file=self.stream, dynamic_ncols=True,
                                   bar_format=None if total > 1 else "{desc}: {elapsed} elapsed")
        bar = self.bars[what]
        if total != bar.total:
            bar.total = total
        bar.update(done - bar.n)

    def _line(self, what: str, done: int, total: int) -> None:
        now = time.monotonic()
        line = self.lines.get(what)
        if line is None or (done == 0 and line.last_done > 0):
            line = self.lines[what] = _Line(now, total, last_time=now)
            self.stream.write(f"{what}: started" + (f", {total} to do" if total > 1 else "") + "\n")
            self.stream.flush()
            return
        due = (now - line.last_time >= LINE_EVERY_S or done - line.last_done >= max(1, LINE_EVERY_SHARE * total)
               or done == total)
        if not due or done == line.last_done or total <= 1:
            return
        elapsed = now - line.started
        left = elapsed / done * (total - done) if done else 0.0
        self.stream.write(f"{what}: {done}/{total} ({100 * done / total:.0f}%), {clock(elapsed)} elapsed"
                          + (f", about {clock(left)} left" if done < total else "") + "\n")
        self.stream.flush()
        line.last_time, line.last_done = now, done

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
        self.bars.clear()
        self.lines.clear()
