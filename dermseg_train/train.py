"""The training run: stages of progressive resizing, epochs, validation as deployed, checkpoints, resume, DDP."""

from __future__ import annotations

import itertools
import math
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from dermseg_deploy.backends.torch_backend import TorchBackend
from dermseg_deploy.errors import CheckFailedError, DermsegError, ModelFileError, UserError
from dermseg_deploy.evaluation.metrics import ScoreTotals
from dermseg_deploy.evaluation.pairs import Pair, discover_pairs
from dermseg_deploy.evaluation.scoring import evaluate_segmenter, totals
from dermseg_deploy.evaluation.val_split import split_val_halves
from dermseg_deploy.model.checkpoint import (
    Checkpoint,
    load_checkpoint,
    load_state_dict_strict,
    save_checkpoint,
)
from dermseg_deploy.model.metadata import ModelMetadata
from dermseg_deploy.model.model_config import ModelConfig
from dermseg_deploy.model.network import ResNet34UNet
from dermseg_deploy.segment.segmenter import Segmenter
from dermseg_deploy.util import cpu
from dermseg_deploy.util.atomic import remove_stale_temp_files

from .config import StageConfig, TrainConfig
from .data import ResizeCache, SegmentationDataset, default_val_count, split_pairs
from .distributed import barrier, init_from_environment, shutdown, stop_requested, sum_across
from .ema import WeightAverage, recalibrate_batchnorm
from .encoder_weights import build_model
from .exclusions import excluded_ids
from .losses import SegmentationLoss
from .optim import encoder_frozen, make_optimizer, make_scheduler, set_encoder_frozen
from .precision import PrecisionChangeError, training_precision
from .process_clock import ProcessClock
from .run_paths import last_checkpoint_path, log_path, split_path
from .run_state import (
    TRAINING_STATE_KEY,
    Progress,
    provenance,
    save_resumable,
    set_rng_state,
    write_split,
)
from .runlog import RunLog

__all__ = ["PrecisionChangeError", "Trainer", "TrainingDivergedError", "TrainingStopped", "last_checkpoint_path",
           "log_path", "split_path"]

EventCallback = Callable[[str, dict[str, Any]], None]


class TrainingDivergedError(CheckFailedError):
    """The loss became NaN or infinite; the last good epoch stays in model.last.pt."""


class TrainingStopped(DermsegError):
    """A stop was asked for (SIGTERM, Ctrl-C); model.last.pt holds the last finished step."""


class Trainer:
    """One run of a TrainConfig; rank 0 logs and saves, every rank trains and validates its share."""

    def __init__(self, config: TrainConfig, on_event: EventCallback | None = None,
                 should_stop: Callable[[], bool] = lambda: False) -> None:
        """`should_stop` is asked after every step (a SIGTERM or Ctrl-C): once any rank says yes, the run saves
        `model.last.pt` where it stands and raises TrainingStopped; `--resume` continues from the next step."""
        self.config = config
        self.on_event = on_event or (lambda kind, info: None)
        self.should_stop = should_stop
        requested = config.device
        self.info = init_from_environment("cuda" if requested.startswith("cuda") else "cpu")
        self.device = self._device(requested)
        if config.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False
        self.precision = training_precision(config.amp, self.device)
        self.channels_last = config.channels_last  # faster on CUDA and on the CPU (oneDNN), in FP32 as in BF16
        pairs = discover_pairs(config.data)
        val_count = self._val_count(len(pairs))
        self.train_pairs, self.val_pairs = split_pairs(pairs, val_count, config.seed)
        excluded = excluded_ids(config.exclude)
        self.excluded = sorted(p.image_id for p in self.train_pairs if p.image_id in excluded)
        self.train_pairs = [p for p in self.train_pairs if p.image_id not in excluded]
        self.scored_pairs = self.val_pairs  # the validation images that score epochs (`validate_on`)
        self.logged_sets: dict[str, list[Pair]] = {}
        """Images scored for the log only, every `log_scores_every` epochs: never used to choose anything."""
        if config.validate_on == "selection":
            selection = set(split_val_halves([p.image_id for p in self.val_pairs], config.seed)["selection"])
            self.scored_pairs = [p for p in self.val_pairs if p.image_id in selection]
            self.logged_sets["reporting"] = [p for p in self.val_pairs if p.image_id not in selection]
        for folder in config.log_scores_on:
            self.logged_sets[Path(folder).name] = discover_pairs(folder)
        self.ema: WeightAverage | None = None
        self.clock = ProcessClock()
        self.ended_by_budget = False
        self.metadata = ModelMetadata(
            train_size_px=config.stages[-1].size_px, train_data=f"{Path(config.data).name} ({len(pairs)} pairs)"
        )
        cache_dir = config.cache_dir or str(Path(config.out).parent / ".dermseg-cache")
        self.cache = ResizeCache(cache_dir if config.cache else None)
        self.loss_fn = SegmentationLoss(config.dice_weight)
        self.log = RunLog(log_path(config.out)) if self.info.is_main else None
        if self.info.is_main:
            remove_stale_temp_files(Path(config.out).parent, recursive=False)

    def _device(self, requested: str) -> torch.device:
        device = torch.device(requested)
        if device.type == "cuda" and self.info.distributed:
            device = torch.device("cuda", self.info.local_rank)
            torch.cuda.set_device(device)
        return device

    def _val_count(self, n_pairs: int) -> int:
        if self.config.val_count is not None:
            return self.config.val_count
        if self.config.val_fraction is not None:
            return max(1, round(n_pairs * self.config.val_fraction))
        return default_val_count(n_pairs)

    # ---- checkpoints -------------------------------------------------------------------------------------

    def _checkpoint(self, model: ResNet34UNet, metrics: dict[str, Any], size_px: int, weights: str) -> Checkpoint:
        """`weights`: `trained` (the optimiser's weights) or `ema` (their average), recorded in the provenance."""
        metadata = self.metadata.with_updates(size_px=size_px, train_size_px=size_px)  # runs as it was trained
        info = provenance(self.config.to_dict(), self.info.world_size, [p.image_id for p in self.val_pairs],
                          self.precision.name, cpu.cpu_record())
        info["weights"] = weights if weights == "trained" else f"ema (decay {self.config.ema_decay})"
        return Checkpoint(dict(model.config.to_dict()), metadata, model.state_dict(), metrics, info)

    def _scored_model(self, model: ResNet34UNet) -> tuple[ResNet34UNet, str]:
        """The weights that are validated, kept as the best checkpoint and exported: the average where there is one."""
        if self.ema is None:
            return model, "trained"
        return self.ema.model, "ema"  # type: ignore[return-value]

    def _update_times(self, progress: Progress) -> None:
        """The run's cumulative CPU seconds (every rank and its loader processes) and wall seconds, into `progress`."""
        cpu_s = sum_across(torch.tensor([self.clock.cpu_s_this_session()], dtype=torch.float64), self.info).item()
        progress.cpu_seconds = self.clock.cpu_s_before + float(cpu_s)
        progress.wall_seconds = self.clock.wall_s()

    def _budget_spent(self) -> bool:
        """Whether the run's wall-time budget (`budget_hours`, over all its sessions) is spent, on any rank."""
        hours = self.config.budget_hours
        return stop_requested(bool(hours) and self.clock.wall_s() >= hours * 3600, self.info)

    def _training_state(self) -> dict[str, Any]:
        return {"ema": self.ema.state_dict()} if self.ema is not None else {}

    # ---- loops -------------------------------------------------------------------------------------------

    def _loader(self, stage: StageConfig) -> tuple[DataLoader[Any], SegmentationDataset, DistributedSampler[Any]]:
        dataset = SegmentationDataset(
            self.train_pairs, stage.size_px, self.metadata, augment=True, cache=self.cache, seed=self.config.seed,
            max_rotation_deg=self.config.max_rotation_deg, lighting_strength=self.config.lighting,
        )
        drop_last = len(self.train_pairs) >= stage.batch_size * self.info.world_size
        sampler: DistributedSampler[Any] = DistributedSampler(
            dataset, num_replicas=self.info.world_size, rank=self.info.rank, shuffle=True, seed=self.config.seed,
            drop_last=drop_last,
        )
        loader = DataLoader(
            dataset, batch_size=stage.batch_size, sampler=sampler, drop_last=drop_last,
            num_workers=self.config.workers, pin_memory=self.device.type == "cuda",
        )
        return loader, dataset, sampler

    def _train_epoch(self, model: nn.Module, raw_model: ResNet34UNet, loader: DataLoader[Any],
                     optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.LRScheduler,
                     scaler: torch.amp.GradScaler, max_steps: int, progress: Progress) -> tuple[float, float]:
        """Train the epoch's batches from `progress.steps_done_in_epoch` up to `max_steps`, stopping early when asked
        (`progress.steps_done_in_epoch` then says where); returns (mean loss, training images/s over all ranks)."""
        model.train()
        total, count, images_seen = 0.0, 0, 0
        start = time.perf_counter()
        skip = progress.steps_done_in_epoch
        for images, masks in itertools.islice(loader, skip, None):
            if skip + count >= max_steps or stop_requested(self.should_stop(), self.info):
                break
            images = images.to(self.device, non_blocking=True)
            masks = masks.to(self.device, non_blocking=True)
            if self.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            optimizer.zero_grad(set_to_none=True)
            with self.precision.autocast(self.device.type):
                loss = self.loss_fn(model(images), masks)
            if not torch.isfinite(loss):
                self._diverged(progress, optimizer, float(loss.item()))
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            if self.ema is not None:
                self.ema.update(raw_model)
            progress.global_step += 1
            count += 1
            total += float(loss.item())  # .item() waits for the GPU, so the timing below is honest
            images_seen += images.shape[0] * self.info.world_size
            progress.steps_done_in_epoch = skip + count
            self.on_event("step", {"global_step": progress.global_step, "loss": float(loss.item())})
        return total / max(1, count), images_seen / max(1e-9, time.perf_counter() - start)

    def _diverged(self, progress: Progress, optimizer: torch.optim.Optimizer, loss: float) -> None:
        stage = self.config.stages[progress.stage_index]
        lrs = [group["lr"] for group in optimizer.param_groups]
        record = {"diverged": {"global_step": progress.global_step + 1, "stage": progress.stage_index,
                               "size_px": stage.size_px, "loss": str(loss), "lrs": lrs, "peak_lrs": list(stage.peak_lrs)}}
        if self.log:
            self.log.write(record)
        raise TrainingDivergedError(
            f"training diverged: loss {loss} at step {progress.global_step + 1} (stage at {stage.size_px} px, "
            f"rates {', '.join(f'{lr:.2g}' for lr in lrs)}); lower the stage's --lrs. "
            f"The last good epoch is in {last_checkpoint_path(self.config.out)}"
        )

    def validate(self, model: ResNet34UNet, size_px: int, pairs: list[Pair] | None = None) -> dict[str, Any]:
        """Every rank scores its share of `pairs` (default: the images that score epochs); sums are added across
        ranks. The model's training mode is restored afterwards."""
        pairs = self.scored_pairs if pairs is None else pairs
        shard = pairs[self.info.rank :: self.info.world_size]
        was_training = model.training
        segmenter = Segmenter(TorchBackend(model, self.metadata.with_updates(size_px=size_px), self.device))
        evaluations = evaluate_segmenter(segmenter, shard, self.config.eval_batch_size)  # dermseg-run's own core
        large = [e for e in evaluations if e.large_lesion]
        values = torch.tensor(totals(evaluations).to_list() + totals(large).to_list(), dtype=torch.float64)
        summed = sum_across(values, self.info).tolist()
        half = len(summed) // 2
        model.train(was_training)
        return {
            "all": ScoreTotals.from_list(summed[:half]).means(),
            "large_lesions": ScoreTotals.from_list(summed[half:]).means(),
            "size_px": size_px,
        }

    def _recalibrate_average(self, size_px: int) -> None:
        """The weight average's BatchNorm statistics, measured for its own weights on the first `ema_bn_images`
        training images at `size_px` (no augmentation, a fixed order: the same on every rank and after a resume)."""
        assert self.ema is not None
        images = self.train_pairs[: self.config.ema_bn_images]
        dataset = SegmentationDataset(images, size_px, self.metadata, augment=False, cache=self.cache)
        size = self.config.eval_batch_size
        batches = (torch.stack([dataset[i][0] for i in range(start, min(start + size, len(dataset)))])
                   for start in range(0, len(dataset), size))  # no DataLoader: it would draw from the global RNG
        recalibrate_batchnorm(self.ema.model, batches, self.device, self.channels_last)

    def _score_epoch(self, model: ResNet34UNet, size_px: int, record: dict[str, Any], log_scores: bool) -> None:
        """Validation (the average's where there is one, its BatchNorm statistics measured first, and then also the
        trained weights', `validation_raw`), and with `log_scores` the logged sets with both (`logged_scores`: for the
        learning curve, never for a choice)."""
        if self.ema is not None:
            self._recalibrate_average(size_px)
        scored, _ = self._scored_model(model)
        record["validation"] = self.validate(scored, size_px)
        if self.ema is not None:
            record["validation_raw"] = self.validate(model, size_px)
        if log_scores and self.logged_sets:
            weights = {"raw": model} | ({"ema": scored} if self.ema is not None else {})
            record["logged_scores"] = {
                name: {label: self.validate(m, size_px, pairs)["all"] for label, m in weights.items()}
                for name, pairs in self.logged_sets.items()
            }

    # ---- the run -----------------------------------------------------------------------------------------

    def run(self, resume: Path | None = None, allow_precision_change: bool = False) -> dict[str, Any]:
        """Train every stage (from `resume`, a `model.last.pt`, where given); returns the last epoch's record.
        A resume that would train in another precision than the run's raises PrecisionChangeError unless
        `allow_precision_change`."""
        torch.manual_seed(self.config.seed)
        random.seed(self.config.seed)
        model = build_model(ModelConfig.from_dict(self.config.model),
                            None if resume else self.config.encoder_weights).to(self.device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        if self.config.ema_decay:
            self.ema = WeightAverage(model, self.config.ema_decay)
        if self.log:
            self.log.write({"started": {"config": self.config.to_dict(), "resume": str(resume) if resume else None}})
        progress, saved_state = Progress(), None
        if resume is not None:
            progress, saved_state = self._restore(model, resume, allow_precision_change)
        self.clock = ProcessClock(progress.cpu_seconds, progress.wall_seconds)
        if self.info.is_main:
            write_split(split_path(self.config.out), self.config.seed, self.train_pairs, self.val_pairs,
                        self.excluded, self.config.exclude)
        history: dict[str, Any] = {}
        try:
            for stage_index in range(progress.stage_index, len(self.config.stages)):
                history = self._run_stage(stage_index, model, progress, saved_state)
                saved_state = None
                if self.ended_by_budget:
                    break
                progress.stage_index, progress.epochs_done_in_stage = stage_index + 1, 0
        finally:
            if self.log:
                self.log.close()
        barrier(self.info)
        shutdown(self.info)
        return history

    def _restore(self, model: ResNet34UNet, path: Path, allow_precision_change: bool) -> tuple[Progress, dict[str, Any]]:
        checkpoint = load_checkpoint(path)
        state = checkpoint.extra.get(TRAINING_STATE_KEY)
        if state is None:
            raise ModelFileError(f"{path}: not a resumable checkpoint (use the {last_checkpoint_path('model.pt').name} file)")
        load_state_dict_strict(model, checkpoint.state_dict, str(path))
        saved_ids = checkpoint.provenance.get("val_ids")
        if saved_ids != [p.image_id for p in self.val_pairs]:
            raise UserError(f"{path}: its validation split differs from this run's (same data and --seed needed)")
        change = self._check_precision(path, checkpoint.provenance, allow_precision_change)
        if (self.ema is None) != ("ema" not in state):
            raise UserError(f"{path}: the run was trained {'without' if 'ema' not in state else 'with'} a weight "
                            f"average and this one asks for {'one' if self.ema is not None else 'none'} (--ema)")
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"], str(path))
        set_rng_state(state["rng"])
        progress = Progress(**state["progress"])
        budget_spent = self.config.budget_hours and progress.wall_seconds >= self.config.budget_hours * 3600
        if budget_spent and progress.steps_done_in_epoch == 0:  # stopped mid-epoch, it finishes that epoch
            raise UserError(f"{path}: the run has spent its budget of {self.config.budget_hours:g} wall-hours "
                            f"({progress.wall_seconds / 3600:.2f} h); nothing is left to train")
        resumed = {"from": str(path), "global_step": progress.global_step, "epochs_done": progress.epochs_done,
                   "precision": self.precision.name, "cpu": cpu.cpu_record()} | ({"precision_change": change} if change else {})
        if self.log:
            self.log.write({"resumed": resumed})
        self.on_event("resumed", resumed)
        return progress, state

    def _check_precision(self, path: Path, saved: dict[str, Any], allowed: bool) -> dict[str, Any] | None:
        """None where this machine trains in the run's own precision; else the change, if `allowed` (the log records
        it), or PrecisionChangeError."""
        before = saved.get("precision")
        if before is None or before == self.precision.name:
            return None
        cpu_before = cpu.describe_cpu_record(saved.get("cpu") or {})
        change = {"from": before, "to": self.precision.name, "cpu_before": cpu_before,
                  "cpu_now": cpu.describe_cpu_record(cpu.cpu_record()), "reason": self.precision.reason}
        if not allowed:
            raise PrecisionChangeError(
                f"{path}: the run trained in {before} (on {cpu_before}); here it would train in {self.precision.name} "
                f"({self.precision.reason}), so the resumed run would not be the run it continues. Pass "
                f"--allow-precision-change to continue in {self.precision.name}"
                + (", or --no-amp to keep fp32" if before == "fp32" else ""))
        return change

    def _wrap(self, model: ResNet34UNet) -> nn.Module:
        """The module the training step calls: under DDP a wrapper made for the parameters that now require
        gradients (DDP registers them when it is built, so freezing or unfreezing the encoder needs a new one)."""
        if not self.info.distributed:
            return model
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def _run_stage(self, stage_index: int, model: ResNet34UNet, progress: Progress,
                   saved_state: dict[str, Any] | None) -> dict[str, Any]:
        stage = self.config.stages[stage_index]
        loader, dataset, sampler = self._loader(stage)
        batches = len(loader)
        if batches == 0:
            raise UserError(f"stage at {stage.size_px} px: no training batch (too few images for the batch size)")
        total_steps = stage.steps or stage.epochs * batches
        epochs = math.ceil(total_steps / batches)
        optimizer = make_optimizer(model, stage.peak_lrs)
        scheduler = make_scheduler(optimizer, stage, total_steps, batches)
        scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision.uses_scaler)
        if saved_state is not None:
            optimizer.load_state_dict(saved_state["optimizer"])
            scheduler.load_state_dict(saved_state["scheduler"])
            scaler.load_state_dict(saved_state["scaler"])
        self.on_event("stage", {"stage": stage_index, "size_px": stage.size_px, "epochs": epochs,
                                "steps": total_steps, "resumed_epochs": progress.epochs_done_in_stage})
        record: dict[str, Any] = {}
        train_model: nn.Module | None = None
        for epoch in range(progress.epochs_done_in_stage, epochs):
            frozen = epoch < stage.freeze_epochs
            if train_model is None or frozen != encoder_frozen(model):
                set_encoder_frozen(model, frozen)
                train_model = self._wrap(model)
            sampler.set_epoch(progress.epochs_done)
            dataset.set_epoch(progress.epochs_done)
            steps_left = total_steps - epoch * batches
            loss, rate = self._train_epoch(
                train_model, model, loader, optimizer, scheduler, scaler, min(batches, steps_left), progress
            )
            if progress.steps_done_in_epoch < min(batches, steps_left):
                self._stopped(model, stage, progress, optimizer, scheduler, scaler)
            progress.steps_done_in_epoch = 0
            progress.epochs_done_in_stage, progress.epochs_done = epoch + 1, progress.epochs_done + 1
            record = {"stage": stage_index, "size_px": stage.size_px, "epoch": progress.epochs_done,
                      "epoch_in_stage": epoch + 1, "global_step": progress.global_step, "train_loss": loss,
                      "train_images_per_s": rate, "precision": self.precision.name, "encoder_frozen": frozen,
                      "lrs": [g["lr"] for g in optimizer.param_groups], "weights": self._scored_model(model)[1]}
            self.ended_by_budget = self._budget_spent()
            last = epoch + 1 == epochs or self.ended_by_budget
            if self.ended_by_budget:
                record["ended_by_budget"] = {"budget_hours": self.config.budget_hours}
            every = self.config.log_scores_every
            if (epoch + 1) % self.config.val_every == 0 or last:
                self._score_epoch(model, stage.size_px, record,
                                  log_scores=bool(every) and (last or progress.epochs_done % every == 0))
            self._finish_epoch(model, record, progress, optimizer, scheduler, scaler)
            if self.ended_by_budget:
                break
        set_encoder_frozen(model, False)
        return record

    def _stopped(self, model: ResNet34UNet, stage: StageConfig, progress: Progress, optimizer: torch.optim.Optimizer,
                 scheduler: torch.optim.lr_scheduler.LRScheduler, scaler: torch.amp.GradScaler) -> None:
        """Asked to stop mid-epoch: save `model.last.pt` at this step (rank 0), log it, raise TrainingStopped."""
        record: dict[str, dict[str, Any]] = {"stopped": {"global_step": progress.global_step, "stage": progress.stage_index,
                              "size_px": stage.size_px, "epoch": progress.epochs_done + 1,
                              "steps_done_in_epoch": progress.steps_done_in_epoch}}
        last = last_checkpoint_path(self.config.out)
        self._update_times(progress)
        record["stopped"] |= {"cpu_seconds": progress.cpu_seconds, "wall_seconds": progress.wall_seconds}
        if self.info.is_main:
            checkpoint = self._checkpoint(model, {"stopped": record["stopped"]}, stage.size_px, "trained")
            save_resumable(last, checkpoint, progress, optimizer, scheduler, scaler, self._training_state())
            assert self.log is not None
            self.log.write(record)
        barrier(self.info)
        raise TrainingStopped(f"stopped at step {progress.global_step}; {last} holds this step: continue with "
                              f"--resume {last}")

    def _finish_epoch(self, model: ResNet34UNet, record: dict[str, Any], progress: Progress,
                      optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.LRScheduler,
                      scaler: torch.amp.GradScaler) -> None:
        jaccard = record.get("validation", {}).get("all", {}).get("jaccard")
        improved = jaccard is not None and jaccard > progress.best_jaccard
        if improved:
            progress.best_jaccard = jaccard
        record["best_jaccard"] = progress.best_jaccard
        self._update_times(progress)
        record["cpu_seconds"], record["wall_seconds"] = progress.cpu_seconds, progress.wall_seconds
        if self.info.is_main:
            if improved:
                best = {"validation": record["validation"], "epoch": record}
                scored, weights = self._scored_model(model)
                save_checkpoint(self._checkpoint(scored, best, record["size_px"], weights), self.config.out)
            last = self._checkpoint(model, {"last_epoch": record}, record["size_px"], "trained")
            save_resumable(last_checkpoint_path(self.config.out), last, progress, optimizer, scheduler, scaler,
                           self._training_state())
            assert self.log is not None
            self.log.write(record)
        self.on_event("epoch", record)
        barrier(self.info)
