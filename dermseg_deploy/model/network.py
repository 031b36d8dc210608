"""The ResNet34-UNet of Raghunath and Nofallah (ISIC 2018 Task 1), after fastai's DynamicUnet.

Encoder: torchvision's resnet34 cut before pooling. Decoder: BatchNorm+ReLU on the encoder output,
a middle conv (512->1024->512), four U-Net blocks (PixelShuffle x2 with ICNR init, concatenation of
the BatchNorm'd skip activation, ReLU, two 3x3 conv-BN-ReLU), a last x2 PixelShuffle to input size,
then the "last cross": concatenate the input image, one residual block and a 1x1 conv to logits.

The model lives with the code that runs it: deployment rebuilds it from a checkpoint, and the trainer
imports it from here (and loads pretrained encoder weights on its own side).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import resnet34

from .model_config import ENCODER_CHANNELS, ModelConfig


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
        self.cross_padding = 0
        """Zero channels appended to the last cross's concatenation (`model_transforms.pad_cross_channels`)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.encoder(x)
        y = self.middle(F.relu(self.encoder_bn(features[-1])))
        for block, skip in zip(self.blocks, reversed(features[:-1])):
            y = block(y, skip)
        y = self.final_upsample(y)
        if self.config.last_cross:
            parts = [y, x]
            if self.cross_padding:
                parts.append(x.new_zeros((x.shape[0], self.cross_padding, *x.shape[2:])))
            y = self.cross_block(torch.cat(parts, dim=1))
        return self.head(y)
