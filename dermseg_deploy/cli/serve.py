"""`dermseg-serve --engine MODEL`: online segmentation over HTTP on Ray Serve, until SIGINT or SIGTERM."""

from __future__ import annotations

import signal
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..backends import BackendOptions
from ..defaults import DEFAULT_MAX_PIXELS, MAX_BATCH_SIZE
from ..errors import DermsegError, UserError
from ..scale.ray_cluster import import_ray, ray_cluster
from ..scale.serve_limits import (
    DEFAULT_DECODE_BUDGET_MB,
    DEFAULT_MAX_BODY_MB,
    DEFAULT_MAX_QUEUED,
    MB,
    ServeLimits,
    cap_malloc_arenas,
)
from ..version import __version__
from .common import backend_option_flags, handle_errors, mask_option_flags, model_or_shipped

if TYPE_CHECKING:
    from ..scale.serve_front import LocalPage


def wait_for_signal() -> None:
    """Block until SIGINT or SIGTERM; the previous handlers come back afterwards."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda signum, frame: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dermseg-serve")
@click.option("--engine", "model_path", default=None, type=click.Path(path_type=Path),
              help="Model file: .pt, .onnx, .xml or .plan (readable where the replicas run). Default: the model "
                   "shipped with dermseg (said at the start, with its licence).")
@click.option("--replicas", type=click.IntRange(min=1), default=None,
              help="Replicas (default: one per GPU; on CPUs, the cluster's CPUs divided by --threads).")
@click.option("--max-batch-size", type=click.IntRange(1, MAX_BATCH_SIZE), default=8, show_default=True,
              help="Requests a replica runs together.")
@click.option("--batch-wait-ms", type=click.FloatRange(min=0), default=10.0, show_default=True,
              help="How long a replica waits for a batch to fill.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True, help="Port to listen on.")
@click.option("--device", default="auto", show_default=True,
              help="auto (CUDA where present, else the CPU), cpu or cuda (one GPU per replica).")
@click.option("--size", "size_px", type=int, default=None, help="Input side for .pt (default: the model's).")
@click.option("--threshold", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=None,
              help="Lesion probability threshold (default: the model's, usually 0.5).")
@click.option("--max-pixels", type=click.IntRange(min=1), default=DEFAULT_MAX_PIXELS, show_default=True,
              help="Larger images get HTTP 413.")
@click.option("--full-decode", is_flag=True, help="On the CPU, decode JPEGs at full size.")
@mask_option_flags
@backend_option_flags
@click.option("--trust-plan", is_flag=True, help=".plan: allow a version-compatible plan's host code.")
@click.option("--ray-address", default=None, help="Join this Ray cluster (auto, ray://HOST:10001) instead of starting one.")
@click.option("--max-body-mb", type=click.IntRange(min=1), default=DEFAULT_MAX_BODY_MB, show_default=True,
              help="Larger request bodies get HTTP 413, from their Content-Length before they are read.")
@click.option("--max-queued", type=click.IntRange(min=0), default=DEFAULT_MAX_QUEUED, show_default=True,
              help="Requests held waiting beyond those the replicas run; more get HTTP 503 with Retry-After.")
@click.option("--decode-budget-mb", type=click.IntRange(min=1), default=DEFAULT_DECODE_BUDGET_MB, show_default=True,
              help="Per replica: decoded pixels in flight (15 bytes per pixel); a request over it waits, then gets 503.")
@handle_errors
def main(model_path: Path | None, replicas: int | None, max_batch_size: int, batch_wait_ms: float, host: str, port: int,
         threads: int | None, device: str, size_px: int | None, threshold: float | None, max_pixels: int,
         full_decode: bool, tta: str, postprocess: str, provider: str, precision: str, trust_plan: bool,
         ray_address: str | None, max_body_mb: int, max_queued: int, decode_budget_mb: int) -> None:
    """Serve skin-lesion segmentation: POST /segment with image bytes returns the PNG mask at the image's size
    (?format=json: lesion fraction, size, timing); GET /healthz; GET / is a page to try it in a browser (choose
    or drop an image, see the outline, the lesion fraction and the time per stage). Bad images get HTTP 400, images over
    --max-pixels 413. Memory is bounded on every process a request passes through: bodies over --max-body-mb get 413
    before they are read, at most the replicas' requests and --max-queued more are held (503 with Retry-After
    beyond), and each replica decodes at most --decode-budget-mb of pixels at a time. SIGINT or SIGTERM stops
    taking requests, lets the ones in flight finish, and exits.

    Exit codes: 0 stopped by a signal; 2 usage error or bad model file (checked before Ray starts); 4 Ray or a
    device unavailable.
    """
    model_path = model_or_shipped(model_path)
    if not model_path.is_file():
        raise UserError(f"{model_path}: model file not found")
    import_ray()  # a clear error where Ray is missing
    from ..backends.model_check import check_model_file

    check_model_file(model_path, size_px, BackendOptions(provider, trust_plan, precision))  # before Ray: one line
    from ray import serve

    from ..core.mask_options import MaskOptions
    from ..scale.ray_batch import plan_actors
    from ..scale.segmenter_spec import SegmenterSpec
    from ..scale.serve_app import APP_NAME, ServeSettings
    from ..scale.serve_front import serving

    limits = ServeLimits(max_body_mb * MB, max_queued, 2 * max_batch_size, decode_budget_mb * MB)
    limits.check_fits(max_pixels)
    cap_malloc_arenas()  # this process holds the front's bodies
    with tempfile.TemporaryDirectory(prefix="dermseg-serve-local-") as local_dir:
        local = local_page(model_path, Path(local_dir) / "page")
        with ray_cluster(ray_address) as cluster:
            plan = plan_actors(cluster, device, replicas, threads)
            options = BackendOptions(provider, trust_plan, precision)
            model = SegmenterSpec(str(model_path.resolve()), device, size_px, threshold, options, max_pixels,
                                  not full_decode, MaskOptions.parse(tta, postprocess))
            settings = ServeSettings(model.on(plan.device, plan.threads), max_batch_size, batch_wait_ms, limits)
            with serving(settings, plan.actors, plan.cpus_per_actor, plan.gpus_per_actor, host, port, APP_NAME, local):
                click.echo(f"serving {model_path} on http://{host}:{port} (a page to try it at /; POST /segment, GET "
                           f"/healthz) with {plan.describe().replace('actor', 'replica')}, masks "
                           f"{model.mask_options.describe()}; {limits.describe(plan.actors)}; Ctrl-C or SIGTERM stops",
                           err=True)
                click.echo(f"the page that segments in the browser, nothing uploaded: http://{host}:{port}/local/"
                           if local.folder is not None else f"no in-browser page at /local/: {local.why}", err=True)
                wait_for_signal()  # installed after Ray's start-up, which sets a SIGTERM handler of its own
                click.echo("stopping: no new requests; waiting for the ones in flight", err=True)
            # leaving the block answered the front's requests, then the replicas finished theirs
            if cluster.started_here:
                serve.shutdown()
    click.echo("stopped", err=True)


def local_page(model_path: Path, folder: Path) -> LocalPage:
    """The in-browser page for `model_path`, written to `folder`; one that cannot be made (not an .onnx, ONNX Runtime
    Web not in the cache: serving never runs npm) is a LocalPage that says why, and the service runs without it."""
    from ..scale.serve_front import LocalPage

    if model_path.suffix.lower() != ".onnx":
        return LocalPage(None, f"it runs .onnx models, and this service runs {model_path.name}")
    from ..export.web_folder import write_web_folder

    try:
        written = write_web_folder(model_path, folder, fetch=False)
    except DermsegError as exc:
        return LocalPage(None, str(exc))
    return LocalPage(written.folder, "", frozenset({*written.files, "manifest.json"}))
