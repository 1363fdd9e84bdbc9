"""DDP on CPU (gloo) or CUDA (NCCL), started by ``torchrun`` (reference §6 "Batch ... parallelism").

``torchrun --nproc_per_node N -m adamml train ...`` sets ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``;
[`init_distributed`][adamml.engine.distributed.init_distributed] reads them. The global batch is
split over the ranks, SyncBatchNorm is used only on CUDA (it raises on CPU in training mode),
and DDP runs with ``find_unused_parameters=True`` because a frozen half of AdaMML and skipped
modalities leave parameters without gradients.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from ..errors import ConfigError

__all__ = [
    "DistInfo",
    "init_distributed",
    "wrap_model",
    "unwrap",
    "all_gather_objects",
    "all_reduce_sum",
    "barrier",
    "resolve_device",
    "cleanup",
]


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: ``rank``, ``world_size``, ``local_rank`` and its ``device``."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """Rank 0 logs, shows progress and writes checkpoints."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        """True when more than one process takes part."""
        return self.world_size > 1


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``"auto"`` -> CUDA if available else CPU; ``"cuda"`` -> ``cuda:local_rank``.

    Raises:
        ConfigError: if CUDA is asked for and not available.
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device {name!r} requested but CUDA is not available; use device=cpu"
            )
        return torch.device(name if ":" in name else f"cuda:{local_rank}")
    return torch.device(name)


def init_distributed(device: str = "cpu") -> DistInfo:
    """Join the process group set up by ``torchrun`` (or stay single-process).

    Uses ``gloo`` on CPU and ``nccl`` on CUDA; ``MASTER_ADDR``/``MASTER_PORT`` come from the
    launcher (``env://``).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local)
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(backend=backend, init_method="env://", rank=rank, world_size=world)
    return DistInfo(rank=rank, world_size=world, local_rank=local, device=dev)


def wrap_model(model: nn.Module, info: DistInfo) -> nn.Module:
    """Wrap in DDP when distributed; SyncBatchNorm only on CUDA.

    ``find_unused_parameters=True``: in a policy pass the recognition network is frozen, in a
    recognition pass the policy is, and in evaluation-mode routing a skipped modality never runs.
    """
    if not info.enabled:
        return model
    if info.device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return nn.parallel.DistributedDataParallel(
            model, device_ids=[info.device.index], find_unused_parameters=True
        )
    return nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DDP wrapper (or the model itself)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def all_gather_objects(obj: Any, info: DistInfo) -> list[Any]:
    """Every rank's ``obj``, in rank order (``[obj]`` when single-process)."""
    if not info.enabled:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def all_reduce_sum(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """``values`` summed over the ranks (``values`` itself when single-process).

    Every rank gets the same result, so decisions taken from it (collapse checks, holding the
    policy) are the same on every rank and the ranks keep issuing the same collectives.
    """
    if not info.enabled:
        return values
    out = values.detach().to(info.device, torch.float64).clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out.cpu()


def barrier(info: DistInfo) -> None:
    """Wait for every rank (no-op single-process)."""
    if info.enabled:
        dist.barrier()


def cleanup(info: DistInfo, *, wait: bool = True) -> None:
    """Leave the process group if this process joined one.

    Args:
        info: the process group.
        wait: first wait for every rank (after a successful run), so that no rank tears its
            group down while a peer still has gloo work in flight (such a rank could abort at
            exit with "terminate called without an active exception"). Pass ``False`` on the
            way out of an error: the other ranks may never arrive.
    """
    if info.enabled and dist.is_initialized():
        if wait:
            dist.barrier()
        dist.destroy_process_group()
