"""A graceful stop on SIGINT (Ctrl-C) or SIGTERM (what docker, systemd and Kubernetes send).

The first signal sets a flag that long-running loops ask between units of work (a batch, a training
step); a second signal of either kind raises StopNow (a KeyboardInterrupt), which stops at once.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator

EXIT_INTERRUPTED = 130
"""Exit status after SIGINT (128 + 2), as shells report it."""
EXIT_TERMINATED = 143
"""Exit status after SIGTERM (128 + 15)."""
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopNow(KeyboardInterrupt):
    """A second stop signal: stop at once, exiting with the signal's status."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.exit_code = EXIT_TERMINATED if signum == signal.SIGTERM else EXIT_INTERRUPTED


class StopFlag:
    """Set by the first SIGINT or SIGTERM while `installed()`; `is_set` is what loops ask."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def is_set(self) -> bool:
        return self.signum is not None

    @property
    def exit_code(self) -> int:
        """143 after SIGTERM, 130 after SIGINT."""
        return EXIT_TERMINATED if self.signum == signal.SIGTERM else EXIT_INTERRUPTED

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else "no signal"

    @contextlib.contextmanager
    def installed(self, on_first: Callable[[str], None] = lambda name: None) -> Iterator[StopFlag]:
        """Catch SIGINT and SIGTERM in this block (main thread only; elsewhere Python cannot); `on_first` gets the
        signal's name once, to say what happens next. The previous handlers come back afterwards."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return

        def handler(signum: int, frame: object) -> None:
            if self.is_set():
                raise StopNow(signum)
            self.signum = signum
            on_first(signal.Signals(signum).name)

        previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
        try:
            yield self
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)
