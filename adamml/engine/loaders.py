"""Loaders for the engine: index-carrying batches over any dataset.

The datasets themselves come from a data source (`adamml.data.sources.build_dataset`: a
manifest or a registered ``scheme:`` source).

Every batch carries the dataset indices of its videos, so evaluation under DDP can drop the
duplicates that `DistributedSampler` pads in (reference §9). The training order of pass ``e``
is a permutation seeded with ``seed + e`` (`DistributedSampler.set_epoch`), identical for any
number of ranks, which is what makes resumed and multi-process runs reproducible.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler, default_collate

from ..errors import ConfigError
from .distributed import DistInfo

__all__ = ["IndexedDataset", "make_loader", "collate_indexed"]


class IndexedDataset(Dataset):
    """Wraps a dataset of ``(inputs, label)`` so items are ``(index, inputs, label)``."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[int, Any, Any]:
        inputs, label = self.dataset[index]
        return index, inputs, label

    def set_epoch(self, epoch: int) -> None:
        """Forward the epoch to datasets that re-seed their augmentation per epoch."""
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)


def collate_indexed(
    batch: list[tuple[int, Mapping[str, Any], Any]],
) -> tuple[Tensor, dict[str, Any], Any]:
    """Collate ``(index, inputs, label)`` items: PyTorch's default collation, except that
    `adamml.data.FlowRequest` inputs (``flow_on_demand``) become one `adamml.data.OnDemandFlow`
    per batch, as `adamml.data.collate_clips` does for ``(inputs, label)`` items."""
    first = batch[0][1]
    if all(isinstance(v, Tensor) for v in first.values()):
        return default_collate(batch)
    from ..data import FlowRequest, OnDemandFlow

    lazy = [k for k, v in first.items() if isinstance(v, FlowRequest)]
    index, eager, label = default_collate(
        [(i, {k: v for k, v in x.items() if k not in lazy}, y) for i, x, y in batch]
    )
    sources = {k: OnDemandFlow([x[k] for _, x, _ in batch]) for k in lazy}
    return index, {k: sources[k] if k in sources else eager[k] for k in first}, label


def make_loader(
    dataset: Dataset, *, batch_size: int, info: DistInfo, train: bool, seed: int, workers: int = 0
) -> tuple[DataLoader, DistributedSampler]:
    """A loader over ``(index, inputs, label)`` batches with this rank's share.

    Batches are collated by [`collate_indexed`][adamml.engine.loaders.collate_indexed], so
    on-demand flow items become one `OnDemandFlow` per batch.

    ``batch_size`` is the global batch; each of the ``world_size`` ranks gets
    ``batch_size // world_size``. The sampler is a `DistributedSampler` even for one process,
    so the order of pass ``e`` (``sampler.set_epoch(e)``) is the same permutation
    (seed ``seed + e``) whatever the number of ranks.

    Raises:
        ConfigError: if the global batch does not split evenly over the ranks.
    """
    if batch_size % info.world_size:
        raise ConfigError(
            f"batch_size {batch_size} does not split over {info.world_size} "
            "processes; use a multiple of the number of processes"
        )
    indexed = IndexedDataset(dataset)
    sampler = DistributedSampler(
        indexed,
        num_replicas=info.world_size,
        rank=info.rank,
        shuffle=train,
        seed=seed,
        drop_last=False,
    )
    loader = DataLoader(
        indexed,
        batch_size=batch_size // info.world_size,
        sampler=sampler,
        num_workers=workers,
        drop_last=False,
        collate_fn=collate_indexed,
        persistent_workers=False,
        pin_memory=info.device.type == "cuda",
    )
    return loader, sampler
