"""FP16 arithmetic emulated with FP32 kernels: for the FP16 check on a CPU, where half-precision kernels are
very slow.

An FP16 engine (TensorRT, PyTorch half on a GPU) stores weights and activations in FP16 and accumulates
convolutions in FP32. The emulated model keeps what matters of that: weights and buffers rounded to FP16,
and the output of every layer rounded to FP16, so that a value beyond FP16's range becomes inf (overflow)
and every activation carries FP16's rounding; the arithmetic inside a layer is FP32. It runs at FP32 speed.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def round_to_fp16(tensor: torch.Tensor) -> torch.Tensor:
    """The nearest FP16 value of each element, back in FP32 (beyond +-65504: inf)."""
    return tensor.to(torch.float16).to(torch.float32)


class EmulatedFp16(nn.Module):
    """`model` in FP32 with FP16 weights, FP16 input and every leaf module's output rounded to FP16."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = copy.deepcopy(model).float().eval()
        with torch.no_grad():
            for tensor in [*self.model.parameters(), *self.model.buffers()]:
                if tensor.is_floating_point():
                    tensor.copy_(round_to_fp16(tensor))
        for module in self.model.modules():
            if not list(module.children()):
                module.register_forward_hook(_round_output)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(round_to_fp16(images.float()))


def _round_output(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
    return round_to_fp16(output)
