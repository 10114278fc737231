"""torchrun support: who am I, which images are mine, and exact integer sums across ranks.

Sharding never pads or drops: rank r of k takes images r, r+k, r+2k, ... of every part, so the
shards partition each part exactly, and counts are summed as integers with all_reduce (never
averages of per-rank accuracies), which makes a k-process run equal a single-process one.
Float values (calibration) travel the same way in slots that one rank each writes, so their
all_reduce sum is exact too, and are only then added up, in one correctly rounded sum.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import Sampler

from gfbench.distributed import (  # noqa: F401 (the ranks' context, re-exported here)
    DistContext,
    init_distributed,
    launched_by_torchrun,
    shutdown_distributed,
)
from gfbench.errors import PeerFailed


def shard(part_sizes: Sequence[int], rank: int, world_size: int) -> list[list[int]]:
    """Per part, the flat indices this rank evaluates (parts laid end to end, no padding)."""
    shards, offset = [], 0
    for size in part_sizes:
        shards.append(list(range(offset + rank, offset + size, world_size)))
        offset += size
    return shards


class ShardSampler(Sampler[int]):
    """Yields a fixed list of flat indices in order (this rank's shards, part after part)."""

    def __init__(self, indices: Sequence[int]):
        self.indices = list(indices)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def sum_counts(counts: torch.Tensor, context: DistContext) -> torch.Tensor:
    """Element-wise sum over all ranks (a copy when single): of int64 counts, or of a float64
    table where each element has one writing rank (zeros elsewhere), whose sum is then that
    rank's value bit for bit (x + 0 = x), whatever the reduction order."""
    total = counts.clone()
    if context.distributed and total.numel():
        try:
            dist.all_reduce(total, op=dist.ReduceOp.SUM)
        except RuntimeError as exc:  # a peer exited: gloo closes its connection
            raise PeerFailed(f"rank {context.rank}: another rank stopped ({exc})") from None
    return total


def broadcast_from_main(value: Any, context: DistContext) -> Any:
    """Rank 0's value on every rank (any picklable object)."""
    if not context.distributed:
        return value
    box = [value]
    try:
        dist.broadcast_object_list(box, src=0)
    except RuntimeError as exc:
        raise PeerFailed(f"rank {context.rank}: another rank stopped ({exc})") from None
    return box[0]


def run_on_main(task: Callable[[], Any], context: DistContext) -> Any:
    """task() on rank 0 (None elsewhere), and every rank learns whether it failed: rank 0
    re-raises its error, the others raise PeerFailed, so none waits in a later collective."""
    result, error = None, None
    if context.is_main:
        try:
            result = task()
        except Exception as exc:
            error = exc
    if context.distributed:
        message = broadcast_from_main(None if error is None else str(error), context)
        if message is not None and not context.is_main:
            raise PeerFailed(f"rank {context.rank}: rank 0 failed ({message})")
    if error is not None:
        raise error
    return result
