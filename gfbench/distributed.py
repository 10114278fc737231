"""torchrun support shared by every command: who am I, and waiting for the other ranks.

A process started by torchrun (WORLD_SIZE > 1) joins the process group it describes (NCCL on
CUDA, gloo on the CPU or the meta device); anything else is a single process whose context is
rank 0 of 1, so the same code runs both ways.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class DistContext:
    """This process's place in the job: rank, world size, and whether it owns the outputs."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1  # ranks on this machine (they share its CPU cores)

    @property
    def is_main(self) -> bool:
        """Rank 0 writes files and reports progress."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """More than one process takes part."""
        return self.world_size > 1


def launched_by_torchrun() -> bool:
    """torchrun (or any launcher of the env:// kind) set WORLD_SIZE > 1 for this process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_distributed(device: str) -> DistContext:
    """Join the process group torchrun describes (NCCL on CUDA, gloo otherwise); a single
    process otherwise. Returns this process's context."""
    if not launched_by_torchrun():
        return DistContext()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    return DistContext(rank=dist.get_rank(), world_size=dist.get_world_size(),
                       local_rank=int(os.environ.get("LOCAL_RANK", "0")),
                       local_world_size=int(os.environ.get("LOCAL_WORLD_SIZE",
                                                           dist.get_world_size())))


def barrier(context: DistContext) -> None:
    """Wait until every rank reaches this point (nothing to wait for in a single process)."""
    if context.distributed:
        import torch.distributed as dist

        dist.barrier()


def shutdown_distributed() -> None:
    """Leave the process group if this process joined one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def broadcast_object(value: T, context: DistContext) -> T:
    """Rank 0's value (any picklable object) on every rank; the value itself in one process."""
    if not context.distributed:
        return value
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]
