"""`dermseg-train --data DIR --out model.pt --size 256 --steps 200 --batch-size 8`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from tqdm import tqdm

from dermseg_deploy.cli_common import handle_errors
from dermseg_deploy.devices import describe_device, resolve_device
from dermseg_deploy.errors import UserError

from . import __version__
from .model import EncoderWeightsError
from .train import PAPER_LRS_512, TrainConfig, run_training


def _parse_lrs(ctx: click.Context, param: click.Parameter, value: str) -> tuple[float, float, float]:
    try:
        lrs = tuple(float(v) for v in value.split(","))
    except ValueError as exc:
        raise click.BadParameter("three comma-separated numbers, e.g. 1e-4,1e-3,1e-2") from exc
    if len(lrs) != 3 or any(lr <= 0 for lr in lrs):
        raise click.BadParameter("three positive comma-separated numbers, e.g. 1e-4,1e-3,1e-2")
    return lrs  # type: ignore[return-value]


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dermseg-train")
@click.option("--data", required=True, type=click.Path(path_type=Path),
              help="ISIC folder (official folder names, or images/ + masks/).")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Checkpoint to write, e.g. model.pt.")
@click.option("--size", "size_px", type=int, default=256, show_default=True, help="Training side (multiple of 32).")
@click.option("--steps", type=click.IntRange(min=1), default=200, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--val-count", type=click.IntRange(min=1), default=None,
              help="Validation images (default: 500, at most a fifth of the data).")
@click.option("--lrs", default=",".join(f"{lr:g}" for lr in PAPER_LRS_512), show_default=True, callback=_parse_lrs,
              help="Peak learning rates of the early-encoder, late-encoder and decoder groups.")
@click.option("--encoder-weights", default="imagenet", show_default=True,
              help="imagenet (torchvision download), a local .pth state dict, or none.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--workers", type=click.IntRange(min=0), default=2, show_default=True, help="Data loader processes.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@handle_errors
def main(
    data: Path, out: Path, size_px: int, steps: int, batch_size: int, val_count: int | None,
    lrs: tuple[float, float, float], encoder_weights: str, seed: int, workers: int, device: str,
) -> None:
    """Train the ResNet34-UNet on ISIC image/mask pairs and save a checkpoint with validation scores."""
    if size_px <= 0 or size_px % 32:
        raise UserError(f"--size {size_px}: must be a positive multiple of 32")
    torch_device = resolve_device(device)
    click.echo(f"training on {describe_device(torch_device)}", err=True)
    config = TrainConfig(
        data=str(data), out=str(out), size_px=size_px, steps=steps, batch_size=batch_size, val_count=val_count,
        lrs=lrs, encoder_weights=encoder_weights, seed=seed, workers=workers, device=str(torch_device),
    )
    bar = tqdm(total=steps, unit="step", file=sys.stderr, dynamic_ncols=True)

    def on_step(info: dict[str, float]) -> None:
        bar.update(1)
        bar.set_postfix(loss=f"{info['loss']:.4f}")

    try:
        checkpoint = run_training(config, on_step)
    except EncoderWeightsError as exc:
        raise UserError(str(exc)) from exc
    finally:
        bar.close()
    metrics = checkpoint.metrics
    val, base = metrics["validation"], metrics["baselines"]
    click.echo(
        f"validation on {val['images']} held-out images at {size_px} px: jaccard {val['jaccard']:.4f}, "
        f"thresholded jaccard {val['thresholded_jaccard']:.4f}, dice {val['dice']:.4f} "
        f"(all-lesion jaccard {base['all_lesion']['jaccard']:.4f}, "
        f"all-background jaccard {base['all_background']['jaccard']:.4f})"
    )
    click.echo(json.dumps({"checkpoint": str(out), **metrics}, sort_keys=True), err=True)
    click.echo(f"wrote {out}")
