"""How much arithmetic the network does per image, counted from its architecture (no torch needed).

The count is PyTorch's convention (`torch.utils.flop_counter`: 2 FLOPs per multiply-add of every convolution; biases,
BatchNorm, ReLU, pooling and PixelShuffle not counted), layer by layer for a square input; a test checks it against
PyTorch's counter. 1.005 TFLOP per image at 1024 px.
"""

from __future__ import annotations

from .model_config import ENCODER_CHANNELS, ModelConfig

RESNET34_BLOCKS = (3, 4, 6, 3)
"""BasicBlocks per stage of ResNet34's layer1..layer4."""


def _conv(in_ch: int, out_ch: int, kernel: int, side_px: int) -> int:
    """Multiply-adds of a square-kernel convolution whose output is side_px x side_px."""
    return in_ch * out_ch * kernel * kernel * side_px * side_px


def _encoder(size_px: int) -> int:
    side = size_px // 2
    macs = _conv(3, 64, 7, side)  # the 7x7 stem, stride 2
    side //= 2  # max pooling
    in_ch = 64
    for stage, (blocks, out_ch) in enumerate(zip(RESNET34_BLOCKS, ENCODER_CHANNELS[1:])):
        if stage > 0:
            side //= 2
        for block in range(blocks):
            first_in = in_ch if block == 0 else out_ch
            macs += _conv(first_in, out_ch, 3, side) + _conv(out_ch, out_ch, 3, side)
            if block == 0 and first_in != out_ch:
                macs += _conv(first_in, out_ch, 1, side)  # the strided 1x1 shortcut
        in_ch = out_ch
    return macs


def _decoder(size_px: int, config: ModelConfig) -> int:
    deepest = ENCODER_CHANNELS[-1]
    side = size_px // 32
    macs = _conv(deepest, deepest * 2, 3, side) + _conv(deepest * 2, deepest, 3, side)  # the middle convs
    up_ch = deepest
    skips = list(reversed(ENCODER_CHANNELS[:-1]))
    for index, skip_ch in enumerate(skips):
        macs += _conv(up_ch, (up_ch // 2) * 4, 1, side)  # 1x1 conv before PixelShuffle, at the input side
        side *= 2
        cat_ch = up_ch // 2 + skip_ch
        out_ch = cat_ch if index != len(skips) - 1 else cat_ch // 2
        macs += _conv(cat_ch, out_ch, 3, side) + _conv(out_ch, out_ch, 3, side)
        up_ch = out_ch
    macs += _conv(up_ch, up_ch * 4, 1, side)  # the final x2 upsampling
    side *= 2
    head_ch = up_ch + (config.in_channels if config.last_cross else 0)
    if config.last_cross:
        macs += 2 * _conv(head_ch, head_ch, 3, side)  # the residual block of the last cross
    return macs + _conv(head_ch, config.out_channels, 1, side)


def flops_per_image(size_px: int, config: ModelConfig | None = None) -> float:
    """FLOPs (2 per multiply-add) of one square `size_px` image through the ResNet34-UNet."""
    config = config or ModelConfig()
    return 2.0 * (_encoder(size_px) + _decoder(size_px, config))
