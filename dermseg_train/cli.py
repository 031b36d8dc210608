"""`dermseg-train`: the paper's recipe by default; `--size/--steps` for one short stage. torchrun-ready."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from tqdm import tqdm

from dermseg_deploy.cli.common import handle_errors
from dermseg_deploy.defaults import DEVICE_HELP
from dermseg_deploy.errors import UserError
from dermseg_deploy.util.extras import TRAIN_EXTRA, require_installed
from dermseg_deploy.util.stop_signals import StopFlag

from . import __version__
from .config import PAPER_LRS_1024, PRESETS, TrainConfig, load_config_file, preset_values
from .run_paths import last_checkpoint_path, log_path

CONFIG_FLAGS = ("data", "out", "val_count", "val_fraction", "seed", "encoder_weights", "workers", "dice_weight",
                "cache_dir", "val_every", "validate_on", "max_rotation_deg", "lighting", "device", "exclude", "ema_decay",
                "log_scores_every", "log_scores_on", "budget_hours")
"""Flags that set a TrainConfig field of the same name: a config file's value stands unless the flag is given."""


def _parse_lrs(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[float, float, float] | None:
    if value is None:
        return None
    try:
        lrs = tuple(float(v) for v in value.split(","))
    except ValueError as exc:
        raise click.BadParameter("three comma-separated numbers, e.g. 1e-4,1e-3,1e-2") from exc
    if len(lrs) != 3 or any(lr <= 0 for lr in lrs):
        raise click.BadParameter("three positive comma-separated numbers, e.g. 1e-4,1e-3,1e-2")
    return lrs  # type: ignore[return-value]


def _parse_stages(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> list[tuple[int, int]]:
    stages = []
    for text in value:
        try:
            size, epochs = (int(part) for part in text.split(":"))
        except ValueError as exc:
            raise click.BadParameter(f"{text!r}: expected SIZE:EPOCHS, e.g. 512:10") from exc
        stages.append((size, epochs))
    return stages


def build_config(ctx: click.Context, options: dict[str, Any]) -> TrainConfig:
    """The preset, then the config file, then every flag given on the command line."""
    data: dict[str, Any] = preset_values(options["preset"])
    if options["config"]:
        data.update(load_config_file(options["config"]))
    explicit = {
        name for name in options
        if ctx.get_parameter_source(name) not in (None, click.core.ParameterSource.DEFAULT)
    }
    for name in CONFIG_FLAGS:
        if name in explicit or name not in data:
            value = options[name]
            data[name] = str(value) if isinstance(value, Path) else value
    for name in ("exclude", "log_scores_on"):
        if isinstance(data.get(name), tuple):
            data[name] = [str(path) for path in data[name]]
    data["deterministic"] = options["deterministic"] or data.get("deterministic", False)
    if options["no_amp"]:
        data["amp"] = False
    if options["no_cache"]:
        data["cache"] = False
    if options["stage"]:
        stages = [{"size_px": size, "epochs": epochs} for size, epochs in options["stage"]]
    elif options["size_px"] is not None:
        stages = [{"size_px": options["size_px"], "epochs": options["epochs"] or 1, "steps": options["steps"]}]
    elif options["steps"] is not None or options["epochs"] is not None:
        raise UserError("--steps and --epochs need --size (one stage); use --stage SIZE:EPOCHS for several")
    else:
        stages = data.get("stages") or [vars(s) for s in TrainConfig(data="", out="").stages]
    for stage in stages:
        for flag, key in (("batch_size", "batch_size"), ("lrs", "lrs"), ("freeze_epochs", "freeze_epochs")):
            if options[flag] is not None and (flag in explicit or key not in stage):
                stage[key] = options[flag]
    if options["paper_1024_lrs"]:
        for stage in stages:
            if stage["size_px"] >= 1024:
                stage["lrs"] = list(PAPER_LRS_1024)
    data["stages"] = stages
    if data.get("data") in (None, "None") or data.get("out") in (None, "None"):
        raise UserError("--data and --out are required (on the command line or in --config)")
    return TrainConfig.from_dict(data)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dermseg-train")
@click.option("--preset", type=click.Choice(tuple(PRESETS)), default="paper", show_default=True,
              help="paper: the paper's recipe, for an ImageNet-pretrained encoder. scratch: for random encoder weights "
                   "(6 epochs at 64 px then 4 at 128 px, BCE + Dice, under 30 min on 2 CPU cores with BF16 for 1500 "
                   "images). long: the shipped model's recipe, hours (8 at 64 px, then up to 60 at 128 px within 8 "
                   "wall-hours; constant rates, weight average, scored on the selection half). A config file and flags "
                   "override it.")
@click.option("--config", type=click.Path(path_type=Path), default=None, help="JSON file of TrainConfig fields.")
@click.option("--data", type=click.Path(path_type=Path), default=None,
              help="ISIC folder (official folder names, or images/ + masks/).")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Best checkpoint, e.g. model.pt (model.last.pt, model.log.jsonl, model.split.json beside it).")
@click.option("--stage", multiple=True, callback=_parse_stages,
              help="SIZE:EPOCHS, repeatable (default: 512:10 then 1024:5, the paper's progressive resizing).")
@click.option("--size", "size_px", type=int, default=None, help="One stage at this size (with --steps or --epochs).")
@click.option("--steps", type=click.IntRange(min=1), default=None, help="Optimiser steps of the one stage.")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Epochs of the one stage.")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Batch size per process (default 8).")
@click.option("--lrs", default=None, callback=_parse_lrs,
              help="Peak rates of the early-encoder, late-encoder and decoder groups for every stage "
                   "(default: the paper's 1e-4,1e-3,1e-2 below 1024 px; 5e-5,5e-4,5e-3 at 1024).")
@click.option("--paper-1024-lrs", is_flag=True,
              help="Use the paper's 1024 rates (5e-4,5e-3,5e-2) for stages at 1024 px; they diverged in our runs, "
                   "so the default there is a tenth of them.")
@click.option("--freeze-epochs", type=click.IntRange(min=0), default=None,
              help="Epochs at the start of each stage with the encoder frozen.")
@click.option("--val-count", type=click.IntRange(min=1), default=None,
              help="Validation images (default: 500, as the paper; at most a quarter of the data).")
@click.option("--val-fraction", type=float, default=None, help="Validation share instead of --val-count.")
@click.option("--val-every", type=click.IntRange(min=1), default=1, show_default=True,
              help="Validate every N epochs (and at the end of each stage).")
@click.option("--validate-on", type=click.Choice(["all", "selection"]), default="all", show_default=True,
              help="Score epochs on all validation images, or on the selection half only, keeping the reporting half "
                   "unseen for dermseg-eval --ids model.split.json --half reporting.")
@click.option("--dice-weight", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Add this times a soft Dice loss to BCE.")
@click.option("--max-rotation-deg", type=click.FloatRange(min=0, max=180), default=10.0, show_default=True,
              help="Augmentation: largest random rotation, in degrees.")
@click.option("--lighting", type=click.FloatRange(min=0, max=1), default=0.2, show_default=True,
              help="Brightness/contrast change strength.")
@click.option("--exclude", multiple=True, type=click.Path(path_type=Path),
              help="A file of image ids (one per line) never to train on, repeatable; they stay in the validation split "
                   "if the seed puts them there. --preset scratch excludes the full-resolution ISIC 2017 images and the "
                   "shipped samples (given, --exclude replaces that list); recorded in model.split.json.")
@click.option("--ema", "ema_decay", type=click.FloatRange(min=0, max=1, max_open=True), default=0.0,
              help="Keep an exponential moving average of the weights with this decay (e.g. 0.999), and validate, keep "
                   "and export it; model.last.pt keeps the trained weights. 0: none (--preset long: 0.999).")
@click.option("--budget-hours", type=click.FloatRange(min=0), default=0.0,
              help="End the run after the epoch during which its wall time, over all its sessions, reaches this "
                   "(scored as the last epoch; 0: none; --preset long: 8).")
@click.option("--log-scores-on", multiple=True, type=click.Path(path_type=Path),
              help="A folder of labelled pairs to score for the log only (a learning curve), repeatable; with "
                   "--validate-on selection the reporting half is scored too. Never used to choose an epoch.")
@click.option("--log-scores-every", type=click.IntRange(min=0), default=0,
              help="Score the --log-scores-on folders and the reporting half every N epochs and at each stage's end, "
                   "with and without the weight average (0: never; --preset long: 2).")
@click.option("--encoder-weights", default="imagenet", show_default=True,
              help="imagenet (torchvision download), a local .pth state dict, or none.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seeds the validation split, the data order, augmentation and initialisation.")
@click.option("--workers", type=click.IntRange(min=0), default=2, show_default=True, help="Data loader processes.")
@click.option("--cache-dir", type=click.Path(path_type=Path), default=None,
              help="Resize cache, kept across runs (default: .dermseg-cache beside --out; at 1024 px about "
                   "3 MB per image).")
@click.option("--no-cache", is_flag=True, help="Decode and resize every image every epoch instead.")
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@click.option("--deterministic", is_flag=True, help="Deterministic algorithms (bitwise-reproducible on the CPU).")
@click.option("--no-amp", is_flag=True,
              help="FP32 throughout. By default training uses mixed precision where the hardware has fast units for it: "
                   "FP16 on CUDA, BF16 on a CPU with native BF16 units (AMX or AVX-512 BF16); said at the start.")
@click.option("--resume", type=click.Path(path_type=Path), default=None, help="Continue from a model.last.pt.")
@click.option("--allow-precision-change", is_flag=True,
              help="With --resume: continue even where this machine would train in another precision than the run did "
                   "(a BF16 run on a CPU without BF16 units, say); the log records the change.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar (the line per epoch stays).")
@handle_errors
def main(**options: Any) -> None:
    """Train the ResNet34-UNet on ISIC image/mask pairs; validate as deployed; save the best and last checkpoints.

    SIGTERM or Ctrl-C finishes the current step, saves model.last.pt there (--resume continues from the next
    step) and exits 143 (SIGTERM) or 130 (SIGINT); a second signal stops at once.

    Each epoch's log line records the run's cumulative CPU-seconds (data loaders included) and wall-seconds; every
    checkpoint records the precision and the CPU. A resume that would change the precision refuses (exit 2) unless
    --allow-precision-change.

    Exit codes: 0 done; 2 usage or data error; 4 device unavailable; 130 interrupted; 143 terminated; 70 internal
    error.
    """
    require_installed(("torch", "torchvision"), "dermseg-train", TRAIN_EXTRA)
    ctx = click.get_current_context()
    config = build_config(ctx, options)
    from dermseg_deploy.util.devices import as_device, describe_device, resolve_device

    from .baselines import add_baselines
    from .distributed import ProcessInfo
    from .train import Trainer, TrainingStopped

    config.device = str(resolve_device(config.device))
    stop = StopFlag()
    main_process = ProcessInfo.from_environment().is_main
    trainer = Trainer(config, _progress_printer(bar=main_process and not options["quiet"], lines=main_process),
                      stop.is_set)
    if trainer.info.is_main:
        click.echo(f"training on {describe_device(as_device(trainer.device))} x {trainer.info.world_size} process(es); "
                   f"{len(trainer.train_pairs)} training and {len(trainer.val_pairs)} validation images"
                   + (f" (epochs scored on the selection half: {len(trainer.scored_pairs)})"
                      if config.validate_on == "selection" else "")
                   + (f"; {len(trainer.excluded)} left out of training by {', '.join(config.exclude)}"
                      if config.exclude else ""), err=True)
        click.echo(trainer.precision.describe(), err=True)
        if config.ema_decay:
            click.echo(f"weights: an exponential moving average (decay {config.ema_decay:g}) is validated, kept in "
                       f"{config.out} and exported; {last_checkpoint_path(config.out)} keeps the trained weights", err=True)

    def announce(name: str) -> None:
        if trainer.info.is_main:
            click.echo(f"\n{name}: saving {last_checkpoint_path(config.out)} after this step ({name} or Ctrl-C "
                       "again to stop at once)", err=True)

    try:
        with stop.installed(announce):
            record = trainer.run(options["resume"], options["allow_precision_change"])
    except TrainingStopped as exc:
        if trainer.info.is_main:
            click.echo(f"{stop.signal_name}: {exc}", err=True)
        sys.exit(stop.exit_code)
    if not trainer.info.is_main:
        return
    best = add_baselines(Path(config.out), trainer.scored_pairs)
    baselines, best_epoch = best["baselines"], best.get("epoch", {})
    validation = best.get("validation", {})
    click.echo(
        f"best: epoch {best_epoch.get('epoch')} at {best_epoch.get('size_px')} px, saved as {config.out} "
        f"(dermseg-eval and a .pt's dermseg-run run it at that size; export it with dermseg-export {config.out} --size "
        f"{best_epoch.get('size_px')}): "
        f"{describe_scores('validation', validation.get('all', {}))}; "
        f"{describe_scores('lesions over 70% of the image', validation.get('large_lesions', {}))}; "
        + ", ".join(f"{name} jaccard {_number(b['all']['jaccard'])}" for name, b in baselines.items())
    )
    if record.get("epoch") != best_epoch.get("epoch"):
        last = record.get("validation", {}).get("all", {})
        click.echo(f"last: epoch {record.get('epoch')} at {record.get('size_px')} px, in "
                   f"{last_checkpoint_path(config.out)}: {describe_scores('validation', last)}")
    click.echo(json.dumps({"best_epoch": best_epoch, "last_epoch": record, "baselines": baselines}, sort_keys=True),
               err=True)
    click.echo(f"wrote {config.out} (best), {last_checkpoint_path(config.out)} (resumable), {log_path(config.out)}")


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def describe_scores(label: str, means: dict[str, Any]) -> str:
    """`label on N held-out images: jaccard ..., thresholded jaccard ..., dice ...` (n/a where there is none)."""
    return (f"{label} on {means.get('images', 0)} held-out images: jaccard {_number(means.get('jaccard'))}, "
            f"thresholded jaccard {_number(means.get('thresholded_jaccard'))}, dice {_number(means.get('dice'))}")


def _progress_printer(bar: bool, lines: bool) -> Any:
    """Events as a progress bar per stage (`bar`) and a line per epoch and resume (`lines`)."""
    state: dict[str, Any] = {"bar": None}

    def on_event(kind: str, info: dict[str, Any]) -> None:
        if kind in ("stage", "step") and not bar or not lines:
            return
        if kind == "stage":
            if state["bar"] is not None:
                state["bar"].close()
            state["bar"] = tqdm(total=info["steps"], unit="step", file=sys.stderr, dynamic_ncols=True,
                                desc=f"stage {info['stage'] + 1} at {info['size_px']} px")
        elif kind == "step" and state["bar"] is not None:
            state["bar"].update(1)
            state["bar"].set_postfix(loss=f"{info['loss']:.4f}")
        elif kind == "epoch":
            validation = info.get("validation", {}).get("all")
            text = f"epoch {info['epoch']}: train loss {info['train_loss']:.4f}"
            if validation:
                text += f", validation jaccard {validation['jaccard']:.4f}"
            raw = info.get("validation_raw", {}).get("all")
            if raw:
                text += f" (averaged weights; trained weights {raw['jaccard']:.4f})"
            text += f"; {info['cpu_seconds'] / 3600:.2f} CPU-h, {info['wall_seconds'] / 3600:.2f} h"
            if info.get("ended_by_budget"):
                text += f": the budget of {info['ended_by_budget']['budget_hours']:g} wall-hours is spent, the run ends"
            tqdm.write(text, file=sys.stderr)
        elif kind == "resumed":
            text = f"resuming from {info['from']} at step {info['global_step']} ({info['epochs_done']} epochs done)"
            change = info.get("precision_change")
            if change:
                text += (f"; the precision changes from {change['from']} (on {change['cpu_before']}) to {change['to']} "
                         "(--allow-precision-change; the log records it)")
            tqdm.write(text, file=sys.stderr)

    return on_event


if __name__ == "__main__":
    main()
