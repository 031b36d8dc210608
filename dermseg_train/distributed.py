"""torchrun-ready process groups: rank and world from the environment, sums across ranks."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class ProcessInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @classmethod
    def from_environment(cls) -> ProcessInfo:
        """What torchrun's RANK, WORLD_SIZE and LOCAL_RANK say (a single process when they are absent)."""
        env = os.environ
        return cls(int(env.get("RANK", "0")), int(env.get("WORLD_SIZE", "1")), int(env.get("LOCAL_RANK", "0")))


def init_from_environment(device_type: str) -> ProcessInfo:
    """Join the process group torchrun describes (gloo on the CPU, NCCL on CUDA); a single process otherwise."""
    info = ProcessInfo.from_environment()
    if not info.distributed:
        return ProcessInfo()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return ProcessInfo(dist.get_rank(), dist.get_world_size(), info.local_rank)


def sum_across(values: torch.Tensor, info: ProcessInfo) -> torch.Tensor:
    """Element-wise sum over all ranks (float64 on the CPU for gloo; moved to the device for NCCL)."""
    if not info.distributed:
        return values
    backend = dist.get_backend()
    tensor = values.to("cuda", torch.float64) if backend == "nccl" else values.to(torch.float64)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.cpu()


def stop_requested(local: bool, info: ProcessInfo) -> bool:
    """Whether any rank was asked to stop (every rank must leave the loop at the same step)."""
    if not info.distributed:
        return local
    return bool(sum_across(torch.tensor([float(local)]), info).item() > 0)


def barrier(info: ProcessInfo) -> None:
    if info.distributed:
        dist.barrier()


def shutdown(info: ProcessInfo) -> None:
    if info.distributed and dist.is_initialized():
        dist.destroy_process_group()
