"""`dermseg-run --ray`: the same work items as a local run, segmented by Ray Data actors that call the core.

Each actor opens the model once, segments its batches with `Segmenter.segment_items` (the core `dermseg-run`
runs), writes masks atomically where the items say, and returns only manifest rows: no mask crosses the object
store. A bad image is a failed row. An error that should end the run (a full disk, a failed backend, a model
that does not load) travels back in-band, as a row, and is raised again on the driver with its own type, so
the exit code is the one a local run would give.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.work_item import WorkItem
from ..errors import (
    BackendUnavailableError,
    CheckFailedError,
    DermsegError,
    InferenceError,
    ModelFileError,
    OutputWriteError,
    UserError,
)
from ..files.manifest import COLUMNS, ManifestRow
from ..segment.pipeline import RunOptions
from ..segment.segmenter import Segmenter
from .ray_cluster import ClusterInfo, import_ray, ray_cluster
from .segmenter_spec import SegmenterSpec

FATAL_TYPES: dict[str, type[DermsegError]] = {
    cls.__name__: cls
    for cls in (UserError, ModelFileError, OutputWriteError, CheckFailedError, BackendUnavailableError, InferenceError)
}
EXTRA_COLUMNS = ("index", "backend", "fatal_type", "fatal_message")


@dataclass(frozen=True)
class ActorSettings:
    """What every actor needs to open the model and segment as a local `dermseg-run` would."""

    model: SegmenterSpec
    overlay: bool = False
    batch_size: int = 4
    io_threads: int = 1


class SegmentActor:
    """A Ray Data actor: the model opened once, then batches of rows in, manifest rows out."""

    def __init__(self, settings: ActorSettings) -> None:
        self.settings = settings
        self.fatal: DermsegError | None = None
        self.segmenter: Segmenter | None = None
        try:
            self.segmenter = settings.model.open()
        except DermsegError as exc:  # reported with the first batch (Ray would only say the actor failed)
            self.fatal = exc

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        items = [WorkItem(Path(source), Path(mask), Path(overlay)) for source, mask, overlay
                 in zip(batch["source"], batch["mask_path"], batch["overlay_path"])]
        indices = [int(i) for i in batch["index"]]
        rows: list[dict[str, Any]] = []
        fatal = self.fatal
        if self.segmenter is not None and fatal is None:
            options = RunOptions(self.settings.batch_size, overwrite=True, io_threads=self.settings.io_threads)
            try:
                for index, result in zip(indices, self.segmenter.segment_items(items, options, self.settings.overlay)):
                    rows.append({**result.manifest_row().to_dict(), "index": index, "backend": self.backend_name})
            except DermsegError as exc:
                fatal = exc
        if fatal is not None:
            rows.append({**ManifestRow("", "failed").to_dict(), "index": -1, "backend": "",
                         "fatal_type": type(fatal).__name__, "fatal_message": str(fatal)})
        return {column: [row.get(column) for row in rows] for column in (*COLUMNS, *EXTRA_COLUMNS)}

    @property
    def backend_name(self) -> str:
        return "" if self.segmenter is None else self.segmenter.backend.describe()


@dataclass(frozen=True)
class RayPlan:
    """How many actors, with what each asks of the cluster."""

    actors: int
    device: str
    threads: int
    cpus_per_actor: float
    gpus_per_actor: float

    def describe(self) -> str:
        per = "1 GPU each" if self.gpus_per_actor else f"{self.threads} thread(s) each"
        return f"{self.actors} Ray actor(s) on {self.device}, {per}"


DEFAULT_CPU_THREADS = 2


def plan_actors(cluster: ClusterInfo, device: str, actors: int | None, threads: int | None) -> RayPlan:
    """GPU nodes: one actor per GPU (`num_gpus=1`); CPU: actors x threads = the cluster's CPUs, so the actors
    share the cores instead of oversubscribing them (`device` auto picks CUDA where the cluster has GPUs)."""
    wants_gpu = device.startswith("cuda") or (device == "auto" and cluster.gpus > 0)
    if wants_gpu:
        if cluster.gpus == 0:
            raise BackendUnavailableError(f"--device {device} was requested but the Ray cluster has no GPU")
        count = actors or cluster.gpus
        return RayPlan(count, "cuda", threads or 1, float(threads or 1), 1.0)
    if device not in ("auto", "cpu"):
        raise UserError(f"--device {device}: use auto, cpu or cuda with --ray")
    cpus = max(1, cluster.cpus)
    per_actor = threads or (max(1, cpus // actors) if actors else min(DEFAULT_CPU_THREADS, cpus))
    count = actors or max(1, cpus // per_actor)
    return RayPlan(count, "cpu", per_actor, float(per_actor), 0.0)


def _row(record: dict[str, Any]) -> ManifestRow:
    """A manifest row from a Ray Data record (where pandas made an empty number NaN)."""
    for key in ("lesion_area_fraction", "predicted_jaccard"):
        value = record.get(key)
        if isinstance(value, float) and math.isnan(value):
            record = {**record, key: None}
    return ManifestRow.from_dict({key: record[key] for key in COLUMNS})


@dataclass
class RayRun:
    """What the driver learns as rows arrive: the rows by input index and the backend the actors run."""

    rows: dict[int, ManifestRow] = field(default_factory=dict)
    backend: str = ""
    plan: RayPlan | None = None


def run_on_ray(
    items: Sequence[WorkItem], settings: ActorSettings, address: str | None, actors: int | None, threads: int | None,
    on_row: Callable[[ManifestRow], None] = lambda row: None, should_stop: Callable[[], bool] = lambda: False,
) -> RayRun:
    """Segment `items` on a Ray cluster (see `ray_cluster` for `address`); rows come to `on_row` as they finish.

    `should_stop` is asked as rows arrive: once it says yes, no more results are taken and the run ends (the
    masks already written stay; running again finishes the rest).
    """
    run = RayRun()
    if not items:
        return run
    ray = import_ray()
    with ray_cluster(address) as cluster:
        plan = plan_actors(cluster, settings.model.device, actors, threads)
        run.plan = plan
        actor_settings = ActorSettings(settings.model.on(plan.device, plan.threads), settings.overlay, settings.batch_size,
                                       plan.threads)
        context = ray.data.DataContext.get_current()  # importing ray.data configures its loggers: quiet them after
        logging.getLogger("ray.data").setLevel(logging.ERROR)  # dermseg-run shows its own progress and summary
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        records = [{"index": i, "source": str(item.source), "mask_path": str(item.mask_path),
                    "overlay_path": str(item.overlay_path)} for i, item in enumerate(items)]
        blocks = -(-len(records) // settings.batch_size)  # one batch per block: a stop waits for little work
        dataset = ray.data.from_items(records, override_num_blocks=blocks)
        segmented = dataset.map_batches(
            SegmentActor, fn_constructor_kwargs={"settings": actor_settings},
            compute=ray.data.ActorPoolStrategy(size=plan.actors), batch_size=settings.batch_size,
            num_cpus=plan.cpus_per_actor, num_gpus=plan.gpus_per_actor, batch_format="numpy",
        )
        for record in _records(segmented):
            if record.get("fatal_type"):
                error_type = FATAL_TYPES.get(str(record["fatal_type"]), DermsegError)
                raise error_type(str(record["fatal_message"]))
            run.backend = run.backend or str(record.get("backend") or "")
            row = _row(record)
            run.rows[int(record["index"])] = row
            on_row(row)
            if should_stop():
                break
    return run


def _records(dataset: Any) -> Iterator[dict[str, Any]]:
    for batch in dataset.iter_batches(batch_size=None, batch_format="pandas"):
        yield from batch.to_dict("records")
