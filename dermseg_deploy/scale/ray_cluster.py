"""Connecting to Ray: a local cluster sized to this machine, or an existing one (`auto`, `ray://...`, an address)."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType

from ..errors import BackendUnavailableError
from ..util.extras import RAY_EXTRA, extra_hint

RAY_HINT = extra_hint(RAY_EXTRA)


def import_ray() -> ModuleType:
    try:
        import ray
    except ImportError as exc:
        raise BackendUnavailableError(f"--ray needs Ray, which is not installed: {RAY_HINT}") from exc
    return ray


@dataclass(frozen=True)
class ClusterInfo:
    """What the cluster offers, and whether this process started it (then it stops it too)."""

    cpus: int
    gpus: int
    started_here: bool


@contextlib.contextmanager
def ray_cluster(address: str | None = None) -> Iterator[ClusterInfo]:
    """Join the cluster at `address`, or start a local one sized to this machine (stopped at the end).

    A process already connected to Ray (a notebook, a test session) keeps its connection: nothing is started
    or stopped. Leaving disconnects this driver only; a cluster this call did not start keeps running.
    """
    ray = import_ray()
    if ray.is_initialized():
        yield _info(ray, started_here=False)
        return
    keep_sigterm = threading.current_thread() is threading.main_thread()
    sigterm_handler = signal.getsignal(signal.SIGTERM) if keep_sigterm else None
    try:
        if address is None:
            ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, log_to_driver=False,
                     configure_logging=True, logging_level="WARNING")
        else:
            ray.init(address=address, log_to_driver=False, logging_level="WARNING")
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray cluster"
        raise BackendUnavailableError(f"could not start or reach {where} ({exc})") from exc
    if sigterm_handler is not None:  # ray.init sets SIGTERM to sys.exit: the caller's handler (a graceful stop) comes back
        signal.signal(signal.SIGTERM, sigterm_handler)
    try:
        yield _info(ray, started_here=address is None)
    finally:
        ray.shutdown()


def _info(ray: ModuleType, started_here: bool) -> ClusterInfo:
    resources = ray.cluster_resources()
    return ClusterInfo(int(resources.get("CPU", 0)), int(resources.get("GPU", 0)), started_here)
