"""Pretrained encoder weights for training: torchvision's ImageNet resnet34, a local state dict, or none."""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
from torchvision.models import ResNet34_Weights

from dermseg_deploy.errors import UserError
from dermseg_deploy.model.model_config import ModelConfig
from dermseg_deploy.model.network import ResNet34Encoder, ResNet34UNet


class EncoderWeightsError(UserError):
    """The requested encoder weights could not be obtained or do not fit the encoder (exit 2)."""


TORCHVISION_PREFIXES = {"conv1": "stem.0", "bn1": "stem.1"}


def load_torchvision_resnet34(encoder: ResNet34Encoder, state_dict: dict[str, torch.Tensor]) -> None:
    """Load a torchvision resnet34 state dict into the encoder (classifier keys ignored); strict otherwise."""
    renamed = {}
    for key, value in state_dict.items():
        if key.startswith("fc."):
            continue
        head, _, rest = key.partition(".")
        renamed[f"{TORCHVISION_PREFIXES.get(head, head)}.{rest}"] = value
    expected = encoder.state_dict()
    missing = sorted(set(expected) - set(renamed))
    unexpected = sorted(set(renamed) - set(expected))
    wrong = sorted(k for k in set(expected) & set(renamed) if tuple(expected[k].shape) != tuple(renamed[k].shape))
    if missing or unexpected or wrong:
        raise EncoderWeightsError(
            f"encoder weights do not fit resnet34: missing {missing[:5]}, unexpected {unexpected[:5]}, "
            f"wrong shape {wrong[:5]}"
        )
    encoder.load_state_dict(renamed, strict=True)


def _imagenet_state_dict() -> dict[str, torch.Tensor]:
    try:
        return ResNet34_Weights.IMAGENET1K_V1.get_state_dict(progress=False)
    except OSError as exc:  # URLError is an OSError
        raise EncoderWeightsError(
            f"could not download torchvision's ImageNet resnet34 weights ({exc}); "
            "pass a local .pth file, or 'none' for random initialisation"
        ) from exc


def _local_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise EncoderWeightsError(f"{path}: encoder weights file not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, OSError, EOFError, ValueError) as exc:
        raise EncoderWeightsError(f"{path}: not a loadable state dict ({type(exc).__name__}: {exc})") from exc
    if not isinstance(state, dict):
        raise EncoderWeightsError(f"{path}: expected a state dict, found {type(state).__name__}")
    return state


def load_encoder_weights(model: ResNet34UNet, weights: str | Path | None) -> None:
    """Load encoder weights: "imagenet" (torchvision IMAGENET1K_V1), a local `.pth` state dict, or None."""
    if weights is None or str(weights).lower() == "none":
        return
    state = _imagenet_state_dict() if str(weights).lower() == "imagenet" else _local_state_dict(Path(weights))
    load_torchvision_resnet34(model.encoder, state)


def build_model(config: ModelConfig | None = None, encoder_weights: str | Path | None = None) -> ResNet34UNet:
    """Build the network, optionally with pretrained encoder weights."""
    model = ResNet34UNet(config)
    load_encoder_weights(model, encoder_weights)
    return model
