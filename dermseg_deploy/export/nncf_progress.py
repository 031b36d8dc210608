"""NNCF's progress (statistics collection, bias correction layer by layer) as `on_progress(what, done, total)` calls,
instead of NNCF's own bars (which the export hides, so that one progress display speaks for every step).

NNCF 2.x/3.x iterates with `nncf.common.logging.track_progress.track`, imported by name into the modules that use
it; during `nncf_progress` each of those names points at a tracker of ours. Where a module or the name is missing
(another NNCF), its progress is simply not shown: quantization itself is untouched.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

ProgressCallback = Callable[[str, int, int], None]
TRACKED_MODULES = {
    "nncf.common.tensor_statistics.aggregator": "NNCF statistics",
    "nncf.quantization.algorithms.bias_correction.algorithm": "NNCF bias correction (layers)",
    "nncf.quantization.algorithms.fast_bias_correction.algorithm": "NNCF fast bias correction (layers)",
}


def _tracker(label: str, on_progress: ProgressCallback) -> Any:
    class Tracked:
        """What NNCF's `track` is used as: an iterable over a sequence (with `total`), or a context manager."""

        def __init__(self, sequence: Iterable[Any] | None = None, description: str = "", total: float | None = None,
                     **_: Any) -> None:
            self.sequence = sequence
            self.total = int(total if total is not None else len(sequence))  # type: ignore[arg-type]
            self.done = 0

        def __iter__(self) -> Iterator[Any]:
            on_progress(label, 0, self.total)
            for item in self.sequence or ():
                yield item
                self.done += 1
                on_progress(label, self.done, self.total)

        def __enter__(self) -> Tracked:
            on_progress(label, 0, self.total)
            return self

        def __exit__(self, *args: Any) -> None:
            return None

        def update(self, advance: int = 1, **_: Any) -> None:
            self.done += advance
            on_progress(label, self.done, self.total)

    return Tracked


@contextlib.contextmanager
def nncf_progress(on_progress: ProgressCallback) -> Iterator[None]:
    """While inside, NNCF reports its loops to `on_progress`."""
    replaced: list[tuple[Any, Any]] = []
    for name, label in TRACKED_MODULES.items():
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(module, "track"):
            replaced.append((module, module.track))
            setattr(module, "track", _tracker(label, on_progress))  # noqa: B010 (a module attribute mypy cannot see)
    try:
        yield
    finally:
        for module, original in replaced:
            setattr(module, "track", original)  # noqa: B010
