"""Datasets and loaders for the engine: manifests, ``synthetic:N`` and index-carrying batches.

Every batch carries the dataset indices of its videos, so evaluation under DDP can drop the
duplicates that `DistributedSampler` pads in (reference §9). The training order of pass ``e``
is a permutation seeded with ``seed + e`` (`DistributedSampler.set_epoch`), identical for any
number of ranks, which is what makes resumed and multi-process runs reproducible.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from ..errors import ConfigError
from .distributed import DistInfo

__all__ = ["SyntheticTensorDataset", "IndexedDataset", "build_dataset", "make_loader"]


class SyntheticTensorDataset(Dataset):
    """``N`` deterministic in-memory videos for tests and smoke runs (``data.train: synthetic:N``).

    Video ``i`` has label ``i % K``; each modality is Gaussian noise plus a fixed per-class
    pattern, so every modality carries the label (with ``strength`` setting how clearly).
    Item ``i`` is the same tensor whatever process, order or epoch asks for it.

    Args:
        num_videos: N.
        input_spec: ``{modality: InputSpec}`` (``model.input_spec``).
        segments: S.
        num_classes: K.
        seed: seeds the class patterns (shared by the splits of one run).
        noise_seed: seeds the per-video noise (differs between splits); default ``seed``.
        strength: scale of the class pattern relative to unit noise.

    Example:
        >>> from adamml.modalities import InputSpec
        >>> ds = SyntheticTensorDataset(4, {"rgb": InputSpec((2, 3, 8, 8))}, 3, 2)
        >>> x, y = ds[1]
        >>> tuple(x["rgb"].shape), y
        ((3, 2, 3, 8, 8), 1)
    """

    def __init__(self, num_videos: int, input_spec: Mapping[str, Any], segments: int,
                 num_classes: int, *, seed: int = 0, noise_seed: int | None = None,
                 strength: float = 1.0) -> None:
        self.num_videos = int(num_videos)
        self.shapes = {m: tuple(spec.shape) for m, spec in input_spec.items()}
        self.segments = int(segments)
        self.num_classes = int(num_classes)
        self.seed = int(seed)
        self.noise_seed = self.seed if noise_seed is None else int(noise_seed)
        self.strength = float(strength)
        self._patterns: dict[str, Tensor] = {}
        for m, shape in self.shapes.items():
            g = torch.Generator().manual_seed(self.seed * 7919 + zlib.crc32(m.encode()))
            self._patterns[m] = torch.randn(self.num_classes, *shape, generator=g)

    def __len__(self) -> int:
        return self.num_videos

    def __getitem__(self, index: int) -> tuple[dict[str, Tensor], int]:
        if not 0 <= index < self.num_videos:
            raise IndexError(f"index {index} out of range for {self.num_videos} videos")
        label = index % self.num_classes
        g = torch.Generator().manual_seed(self.noise_seed * 1_000_003 + index + 1)
        inputs = {}
        for m, shape in self.shapes.items():
            noise = torch.randn(self.segments, *shape, generator=g)
            inputs[m] = noise + self.strength * self._patterns[m][label]
        return inputs, label


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


def build_dataset(source: str, input_spec: Mapping[str, Any], *, segments: int, train: bool,
                  num_classes: int, seed: int = 0, on_error: str = "raise",
                  base_dir: str | Path | None = None) -> Dataset:
    """A dataset from a manifest path or ``synthetic:N``.

    Args:
        source: ``path/to/manifest.csv`` (relative to ``base_dir``) or ``synthetic:N``.
        input_spec: ``model.input_spec``.
        segments: S.
        train: training sampling/augmentation (manifests only).
        num_classes: K (synthetic data).
        seed: seeds synthetic data and the dataset's own sampling.
        on_error: passed to `adamml.data.VideoDataset`.
        base_dir: folder that relative manifest paths are resolved against (the config's).

    Raises:
        ConfigError: for a malformed ``synthetic:`` source or a missing manifest.
    """
    if source.startswith("synthetic:"):
        spec = source.split(":", 1)[1]
        try:
            n = int(spec)
        except ValueError:
            raise ConfigError(f"data source {source!r} must be synthetic:N with N an integer"
                              ) from None
        if n < 1:
            raise ConfigError(f"data source {source!r} needs at least one video")
        # same class patterns, different noise: validation videos are held out
        return SyntheticTensorDataset(n, input_spec, segments, num_classes, seed=seed,
                                      noise_seed=seed * 2 + (0 if train else 1))
    path = Path(source)
    if base_dir is not None and not path.is_absolute():
        path = Path(base_dir) / path
    if not path.is_file():
        raise ConfigError(f"manifest {str(path)!r} does not exist (a CSV with header path,label, "
                          "or synthetic:N)")
    try:
        from ..data import VideoDataset  # type: ignore[attr-defined]
    except ImportError as err:
        raise ConfigError(f"cannot read manifest {str(path)!r}: adamml.data.VideoDataset is "
                          f"not available ({err})") from None
    return VideoDataset(str(path), input_spec, segments=segments, train=train,
                        on_error=on_error, seed=seed)


def make_loader(dataset: Dataset, *, batch_size: int, info: DistInfo, train: bool, seed: int,
                workers: int = 0) -> tuple[DataLoader, DistributedSampler]:
    """A loader over ``(index, inputs, label)`` batches with this rank's share.

    ``batch_size`` is the global batch; each of the ``world_size`` ranks gets
    ``batch_size // world_size``. The sampler is a `DistributedSampler` even for one process,
    so the order of pass ``e`` (``sampler.set_epoch(e)``) is the same permutation
    (seed ``seed + e``) whatever the number of ranks.

    Raises:
        ConfigError: if the global batch does not split evenly over the ranks.
    """
    if batch_size % info.world_size:
        raise ConfigError(f"batch_size {batch_size} does not split over {info.world_size} "
                          "processes; use a multiple of the number of processes")
    indexed = IndexedDataset(dataset)
    sampler = DistributedSampler(indexed, num_replicas=info.world_size, rank=info.rank,
                                 shuffle=train, seed=seed, drop_last=False)
    loader = DataLoader(indexed, batch_size=batch_size // info.world_size, sampler=sampler,
                        num_workers=workers, drop_last=False,
                        persistent_workers=False, pin_memory=info.device.type == "cuda")
    return loader, sampler
