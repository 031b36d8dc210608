"""The ResNet34-UNet of Raghunath and Nofallah (ISIC 2018 Task 1), after fastai's DynamicUnet.

Encoder: torchvision's resnet34 cut before pooling. Decoder: BatchNorm+ReLU on the encoder output,
a middle conv (512->1024->512), four U-Net blocks (PixelShuffle x2 with ICNR init, concatenation of
the BatchNorm'd skip activation, ReLU, two 3x3 conv-BN-ReLU), a last x2 PixelShuffle to input size,
then the "last cross": concatenate the input image, one residual block and a 1x1 conv to logits.

This module is the only part of the trainer that deployment imports (lazily, for `.pt` files).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import ResNet34_Weights, resnet34

ARCHITECTURE = "resnet34_unet"
ENCODER_CHANNELS: tuple[int, ...] = (64, 64, 128, 256, 512)
"""Channels of the encoder activations at strides 2, 4, 8, 16 and 32 (the decoder reads these)."""
SIZE_MULTIPLE = 32


class EncoderWeightsError(Exception):
    """The requested encoder weights could not be obtained or do not fit the encoder."""


@dataclass(frozen=True)
class ModelConfig:
    """Architecture settings; stored in the checkpoint so that the model can be rebuilt."""

    architecture: str = ARCHITECTURE
    in_channels: int = 3
    out_channels: int = 1
    last_cross: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        config = cls(**data)
        if config.architecture != ARCHITECTURE:
            raise ValueError(f"unknown architecture {config.architecture!r} (expected {ARCHITECTURE!r})")
        return config


def conv_bn_relu(in_ch: int, out_ch: int, kernel_size: int = 3, zero_bn: bool = False) -> nn.Sequential:
    """Conv (no bias) -> BatchNorm -> ReLU; `zero_bn` starts the BatchNorm scale at 0 (residual branches)."""
    bn = nn.BatchNorm2d(out_ch)
    if zero_bn:
        nn.init.zeros_(bn.weight)
    conv = nn.Conv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2, bias=False)
    nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
    return nn.Sequential(conv, bn, nn.ReLU(inplace=True))


def icnr_(weight: torch.Tensor, scale: int = 2) -> None:
    """ICNR init (Aitken et al. 2017): every PixelShuffle sub-pixel starts from the same kernel."""
    out_ch, in_ch, kh, kw = weight.shape
    sub = torch.empty(out_ch // scale**2, in_ch, kh, kw)
    nn.init.kaiming_normal_(sub, nonlinearity="relu")
    with torch.no_grad():
        weight.copy_(sub.repeat_interleave(scale**2, dim=0))


class PixelShuffleUpsample(nn.Module):
    """x2 upsampling: 1x1 conv to 4x channels (ICNR init), ReLU, PixelShuffle."""

    def __init__(self, in_ch: int, out_ch: int, scale: int = 2) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch * scale**2, kernel_size=1)
        icnr_(self.conv.weight, scale)
        assert self.conv.bias is not None
        nn.init.zeros_(self.conv.bias)
        self.relu = nn.ReLU(inplace=True)
        self.shuffle = nn.PixelShuffle(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.relu(self.conv(x)))


class UnetBlock(nn.Module):
    """Upsample, concatenate the BatchNorm'd skip activation, ReLU, two 3x3 conv-BN-ReLU."""

    def __init__(self, up_in_ch: int, skip_ch: int, final_div: bool = True) -> None:
        super().__init__()
        self.upsample = PixelShuffleUpsample(up_in_ch, up_in_ch // 2)
        self.skip_bn = nn.BatchNorm2d(skip_ch)
        cat_ch = up_in_ch // 2 + skip_ch
        out_ch = cat_ch if final_div else cat_ch // 2
        self.relu = nn.ReLU(inplace=True)
        self.conv1 = conv_bn_relu(cat_ch, out_ch)
        self.conv2 = conv_bn_relu(out_ch, out_ch)
        self.out_channels = out_ch

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        up = self.upsample(x)
        cat = self.relu(torch.cat([up, self.skip_bn(skip)], dim=1))
        return self.conv2(self.conv1(cat))


class ResidualBlock(nn.Module):
    """x + conv_bn_relu(conv_bn_relu(x)), the second BatchNorm starting at zero."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(conv_bn_relu(channels, channels), conv_bn_relu(channels, channels, zero_bn=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResNet34Encoder(nn.Module):
    """torchvision's resnet34 without pooling and classifier; returns the five skip activations."""

    def __init__(self) -> None:
        super().__init__()
        net = resnet34(weights=None)
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu)
        self.maxpool = net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        s2 = self.stem(x)
        s4 = self.layer1(self.maxpool(s2))
        s8 = self.layer2(s4)
        s16 = self.layer3(s8)
        s32 = self.layer4(s16)
        return [s2, s4, s8, s16, s32]

    def load_torchvision_state_dict(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Load a torchvision resnet34 state dict (classifier keys ignored); strict otherwise."""
        renamed = {}
        for key, value in state_dict.items():
            if key.startswith("fc."):
                continue
            if key.startswith(("conv1.", "bn1.")):
                key = {"conv1": "stem.0", "bn1": "stem.1"}[key.split(".")[0]] + key[key.index(".") :]
            renamed[key] = value
        try:
            result = self.load_state_dict(renamed, strict=False)
        except RuntimeError as exc:  # shape mismatches
            raise EncoderWeightsError(f"encoder weights do not fit resnet34: {str(exc).splitlines()[-1].strip()}") from exc
        if result.missing_keys or result.unexpected_keys:
            raise EncoderWeightsError(
                f"encoder weights do not fit resnet34: missing {result.missing_keys[:5]}, "
                f"unexpected {result.unexpected_keys[:5]}"
            )


class ResNet34UNet(nn.Module):
    """ResNet34 encoder + DynamicUnet decoder + last cross; (N,3,H,W) -> (N,1,H,W) logits."""

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        self.config = config or ModelConfig()
        if self.config.in_channels != 3:
            raise ValueError("the ResNet34 encoder takes 3 input channels")
        self.encoder = ResNet34Encoder()
        deepest = ENCODER_CHANNELS[-1]
        self.encoder_bn = nn.BatchNorm2d(deepest)
        self.middle = nn.Sequential(conv_bn_relu(deepest, deepest * 2), conv_bn_relu(deepest * 2, deepest))
        blocks = []
        up_ch = deepest
        skips = list(reversed(ENCODER_CHANNELS[:-1]))
        for i, skip_ch in enumerate(skips):
            block = UnetBlock(up_ch, skip_ch, final_div=i != len(skips) - 1)
            blocks.append(block)
            up_ch = block.out_channels
        self.blocks = nn.ModuleList(blocks)
        self.final_upsample = PixelShuffleUpsample(up_ch, up_ch)
        head_ch = up_ch + (self.config.in_channels if self.config.last_cross else 0)
        self.cross_block = ResidualBlock(head_ch) if self.config.last_cross else nn.Identity()
        self.head = nn.Conv2d(head_ch, self.config.out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.encoder(x)
        y = self.middle(F.relu(self.encoder_bn(features[-1])))
        for block, skip in zip(self.blocks, reversed(features[:-1])):
            y = block(y, skip)
        y = self.final_upsample(y)
        if self.config.last_cross:
            y = self.cross_block(torch.cat([y, x], dim=1))
        return self.head(y)

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """Three parameter groups for discriminative learning rates: early encoder, late encoder, decoder."""
        enc = self.encoder
        early = [*enc.stem.parameters(), *enc.layer1.parameters(), *enc.layer2.parameters()]
        late = [*enc.layer3.parameters(), *enc.layer4.parameters()]
        encoder_ids = {id(p) for p in enc.parameters()}
        decoder = [p for p in self.parameters() if id(p) not in encoder_ids]
        return [early, late, decoder]


def load_encoder_weights(model: ResNet34UNet, weights: str | Path | None) -> None:
    """Load encoder weights: "imagenet" (torchvision IMAGENET1K_V1), a local `.pth` state dict, or None."""
    if weights is None or str(weights).lower() == "none":
        return
    if str(weights).lower() == "imagenet":
        try:
            state = ResNet34_Weights.IMAGENET1K_V1.get_state_dict(progress=False)
        except OSError as exc:  # URLError is an OSError
            raise EncoderWeightsError(
                f"could not download torchvision's ImageNet resnet34 weights ({exc}); "
                "pass a local .pth file, or 'none' for random initialisation"
            ) from exc
    else:
        path = Path(weights)
        if not path.is_file():
            raise EncoderWeightsError(f"{path}: encoder weights file not found")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise EncoderWeightsError(f"{path}: not a loadable state dict ({exc})") from exc
        if not isinstance(state, dict):
            raise EncoderWeightsError(f"{path}: expected a state dict, found {type(state).__name__}")
    model.encoder.load_torchvision_state_dict(state)


def build_model(config: ModelConfig | None = None, encoder_weights: str | Path | None = None) -> ResNet34UNet:
    """Build the network, optionally with pretrained encoder weights."""
    model = ResNet34UNet(config)
    load_encoder_weights(model, encoder_weights)
    return model


def check_input_size(height: int, width: int) -> None:
    """Raise ValueError unless both sides are positive multiples of 32."""
    if height <= 0 or width <= 0 or height % SIZE_MULTIPLE or width % SIZE_MULTIPLE:
        raise ValueError(f"input size {height}x{width}: both sides must be positive multiples of {SIZE_MULTIPLE}")
