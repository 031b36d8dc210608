"""A step-based training run: Adam with discriminative learning rates, one-cycle, BCE; validation as deployed."""

from __future__ import annotations

import datetime
import platform
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from dermseg_deploy.backends.torch_backend import TorchBackend
from dermseg_deploy.checkpoint import Checkpoint, save_checkpoint
from dermseg_deploy.decode import read_image
from dermseg_deploy.metadata import ModelMetadata
from dermseg_deploy.segmenter import Segmenter

from . import __version__
from .data import Pair, SegmentationDataset, discover_pairs, read_mask, split_pairs
from .metrics import ImageScore, mean_scores, score_image
from .model import ModelConfig, build_model, check_input_size

PAPER_LRS_512 = (1e-4, 1e-3, 1e-2)
StepCallback = Callable[[dict[str, Any]], None]


@dataclass
class TrainConfig:
    """Everything a run needs; saved in the checkpoint's provenance."""

    data: str
    out: str
    size_px: int = 256
    steps: int = 200
    batch_size: int = 8
    val_count: int | None = None
    lrs: tuple[float, float, float] = PAPER_LRS_512
    encoder_weights: str = "imagenet"
    seed: int = 0
    workers: int = 2
    device: str = "cpu"
    eval_batch_size: int = 8
    model: dict[str, Any] = field(default_factory=lambda: ModelConfig().to_dict())

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["lrs"] = list(self.lrs)
        return data


def default_val_count(n_pairs: int) -> int:
    """500 images as in the paper, but never more than a fifth of a smaller data set."""
    return max(1, min(500, n_pairs // 5))


def make_optimizer(model: nn.Module, lrs: Sequence[float]) -> torch.optim.Adam:
    """Adam over the three layer groups (early encoder, late encoder, decoder) with their own rates."""
    groups = model.layer_groups()  # type: ignore[operator]
    return torch.optim.Adam([{"params": g, "lr": lr} for g, lr in zip(groups, lrs)])


def endless(loader: DataLoader[Any]) -> Iterator[Any]:
    """Batches forever, reshuffling at every pass."""
    while True:
        yield from loader


def train_one_step(
    model: nn.Module,
    batch: tuple[torch.Tensor, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    loss_fn: nn.Module,
    device: torch.device,
) -> float:
    images, masks = (t.to(device, non_blocking=True) for t in batch)
    optimizer.zero_grad(set_to_none=True)
    loss = loss_fn(model(images), masks)
    loss.backward()
    optimizer.step()
    scheduler.step()
    return float(loss.item())


def evaluate(segmenter: Segmenter, pairs: Sequence[Pair], batch_size: int = 8) -> list[ImageScore]:
    """Score every pair as deployment would: predict at network size, upsample to the mask's size, compare."""
    scores = []
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        images = [read_image(p.image) for p in chunk]
        predictions = segmenter.predict_masks(images)
        scores += [score_image(pred.cpu(), read_mask(p.mask)) for pred, p in zip(predictions, chunk)]
    return scores


def baseline_scores(pairs: Sequence[Pair]) -> dict[str, dict[str, float]]:
    """Scores of predicting all lesion and all background on the same images."""
    all_lesion, all_background = [], []
    for pair in pairs:
        truth = read_mask(pair.mask)
        all_lesion.append(score_image(torch.ones_like(truth), truth))
        all_background.append(score_image(torch.zeros_like(truth), truth))
    return {"all_lesion": mean_scores(all_lesion), "all_background": mean_scores(all_background)}


def run_training(config: TrainConfig, on_step: StepCallback | None = None) -> Checkpoint:
    """Train, validate on held-out images, save the checkpoint, and return it."""
    check_input_size(config.size_px, config.size_px)
    torch.manual_seed(config.seed)
    device = torch.device(config.device)
    pairs = discover_pairs(config.data)
    val_count = config.val_count or default_val_count(len(pairs))
    train_pairs, val_pairs = split_pairs(pairs, val_count, config.seed)
    metadata = ModelMetadata(train_size_px=config.size_px, train_data=f"{Path(config.data).name} ({len(pairs)} pairs)")

    model = build_model(ModelConfig.from_dict(config.model), config.encoder_weights).to(device)
    optimizer = make_optimizer(model, config.lrs)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=list(config.lrs), total_steps=config.steps)
    loss_fn = nn.BCEWithLogitsLoss()
    dataset = SegmentationDataset(train_pairs, config.size_px, metadata, augment=True)
    loader = DataLoader(
        dataset, batch_size=config.batch_size, shuffle=True, drop_last=len(train_pairs) >= config.batch_size,
        num_workers=config.workers, generator=torch.Generator().manual_seed(config.seed),
        persistent_workers=config.workers > 0,
    )
    batches = endless(loader)
    model.train()
    for step in range(1, config.steps + 1):
        loss = train_one_step(model, next(batches), optimizer, scheduler, loss_fn, device)
        if on_step:
            on_step({"step": step, "loss": loss, "lr": scheduler.get_last_lr()[-1]})

    segmenter = Segmenter(TorchBackend(model, metadata.with_updates(size_px=config.size_px), device))
    metrics = {
        "validation": mean_scores(evaluate(segmenter, val_pairs, config.eval_batch_size)),
        "baselines": baseline_scores(val_pairs),
        "train_images": len(train_pairs),
        "steps": config.steps,
        "validation_size_px": config.size_px,
    }
    provenance = {
        "dermseg_version": __version__,
        "torch_version": str(torch.__version__),
        "python": platform.python_version(),
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "config": config.to_dict(),
        "val_ids": [p.image_id for p in val_pairs],
    }
    checkpoint = Checkpoint(ModelConfig.from_dict(config.model).to_dict(), metadata, model.state_dict(), metrics, provenance)
    save_checkpoint(checkpoint, config.out)
    return checkpoint
