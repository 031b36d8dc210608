"""Exact transforms of a loaded model for faster inference (the checkpoint and its strict loading are untouched).

- `fold_batchnorm`: every convolution followed by a BatchNorm gets the BatchNorm folded into its weights and
  bias (inference only: the BatchNorm's running statistics are constants there).
- `pad_cross_channels`: the last full-resolution block works on 96 + 3 = 99 channels; padding them with zero
  channels to a multiple of 8 suits tensor cores. The extra channels carry zeros through the residual block
  (zero weights in, zero weights and bias out) and the head ignores them (zero weights), so the logits are
  those of the unpadded model up to summation order.
- `prepare_for_compile`: both, on a copy, for `torch.compile` (`--compile`).

TensorRT fuses BatchNorm into convolutions and pads channels for its tensor-core kernels itself, so the ONNX
export keeps the plain graph.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval
from torchvision.models.resnet import BasicBlock

from .network import ResidualBlock, ResNet34UNet

TENSOR_CORE_MULTIPLE = 8


def _fold_sequential(sequential: nn.Sequential) -> None:
    children = list(sequential.children())
    for index in range(len(children) - 1):
        conv, norm = children[index], children[index + 1]
        if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d):
            sequential[index] = fuse_conv_bn_eval(conv, norm)
            sequential[index + 1] = nn.Identity()


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Fold each Conv2d -> BatchNorm2d pair (in a Sequential, or a ResNet BasicBlock) in place; eval mode."""
    model.eval()
    for module in list(model.modules()):
        if isinstance(module, nn.Sequential):
            _fold_sequential(module)
        elif isinstance(module, BasicBlock):
            for conv_name, norm_name in (("conv1", "bn1"), ("conv2", "bn2")):
                conv, norm = getattr(module, conv_name), getattr(module, norm_name)
                if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d):
                    setattr(module, conv_name, fuse_conv_bn_eval(conv, norm))
                    setattr(module, norm_name, nn.Identity())
    return model


def _padded_conv(conv: nn.Conv2d, in_channels: int, out_channels: int) -> nn.Conv2d:
    """`conv` with zero weights (and bias) for the added input and output channels."""
    if conv.stride != (1, 1) or conv.dilation != (1, 1) or conv.groups != 1:
        raise ValueError("only plain stride-1 convolutions are padded")
    kernel = int(conv.weight.shape[-1])
    padded = nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, bias=True)
    with torch.no_grad():
        padded.weight.zero_()
        padded.weight[: conv.out_channels, : conv.in_channels] = conv.weight
        assert padded.bias is not None
        padded.bias.zero_()
        if conv.bias is not None:
            padded.bias[: conv.out_channels] = conv.bias
    return padded.to(conv.weight.device, conv.weight.dtype)


def pad_cross_channels(model: ResNet34UNet, multiple: int = TENSOR_CORE_MULTIPLE) -> ResNet34UNet:
    """Pad the last cross (concatenation, residual block, head) to a multiple of `multiple` channels, in place.

    The model must have had its BatchNorms folded (`fold_batchnorm`): the padded channels then stay zero."""
    if not model.config.last_cross or not isinstance(model.cross_block, ResidualBlock):
        return model
    stages = [stage for stage in model.cross_block.body if isinstance(stage, nn.Sequential)]
    if any(not isinstance(stage[1], nn.Identity) for stage in stages):
        raise ValueError("pad_cross_channels needs folded BatchNorms: call fold_batchnorm first")
    convs = [stage[0] for stage in stages if isinstance(stage[0], nn.Conv2d)]
    channels = convs[0].in_channels
    padded = -(-channels // multiple) * multiple
    if padded == channels:
        return model
    for stage, conv in zip(stages, convs):
        stage[0] = _padded_conv(conv, padded, padded)
    model.head = _padded_conv(model.head, padded, model.head.out_channels)
    model.cross_padding = padded - channels
    return model


def prepare_for_compile(model: ResNet34UNet) -> ResNet34UNet:
    """A copy with BatchNorms folded and the last cross padded to tensor-core-friendly channel counts."""
    prepared = copy.deepcopy(model).eval()
    return pad_cross_channels(fold_batchnorm(prepared))  # type: ignore[arg-type]
