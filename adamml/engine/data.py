"""Datasets and loaders for the engine: manifests, ``synthetic:N``, ``syntheticav:N`` and
index-carrying batches.

Every batch carries the dataset indices of its videos, so evaluation under DDP can drop the
duplicates that `DistributedSampler` pads in (reference §9). The training order of pass ``e``
is a permutation seeded with ``seed + e`` (`DistributedSampler.set_epoch`), identical for any
number of ranks, which is what makes resumed and multi-process runs reproducible.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any, Mapping, get_args

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler, default_collate

from ..errors import ConfigError
from .distributed import DistInfo

__all__ = ["SyntheticTensorDataset", "IndexedDataset", "build_dataset", "make_loader",
           "collate_indexed", "parse_syntheticav", "clear_syntheticav_cache"]


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
                  base_dir: str | Path | None = None, flow_dir: str | Path | None = None,
                  flow_method: str = "tvl1", flow_on_demand: bool = False) -> Dataset:
    """A dataset from a manifest path or ``synthetic:N``.

    Args:
        source: ``path/to/manifest.csv`` (relative to ``base_dir``) or ``synthetic:N``.
        input_spec: ``model.input_spec``.
        segments: S.
        train: training sampling/augmentation (manifests only).
        num_classes: K: synthetic data has K classes, a manifest's class list must have K.
        seed: seeds synthetic data and the dataset's own sampling.
        on_error: passed to `adamml.data.VideoDataset`.
        base_dir: folder that relative manifest and flow paths are resolved against (the
            config's).
        flow_dir: stored flow of a manifest's videos (``adamml extract flow``); no flow is
            computed then. Ignored by ``synthetic:`` sources.
        flow_method: how a manifest's (and, unless its source says otherwise, a
            ``syntheticav:`` source's) flow is computed from frames.
        flow_on_demand: a manifest's flow as `adamml.data.FlowRequest` items, which
            `collate_indexed` turns into an `adamml.data.OnDemandFlow` per batch, so an
            evaluation computes flow only for the segments the policy selected.

    ``syntheticav:N[,key=value...]`` is `adamml.data.synthetic.SyntheticAV` featurised in
    memory (see `parse_syntheticav`); it is built once per process and cached.

    Raises:
        ConfigError: for a malformed ``synthetic:`` source or a missing manifest.
        ManifestError: if a manifest's class list does not have ``num_classes`` names.
    """
    if source.startswith("syntheticav:"):
        return _syntheticav(source, input_spec, segments=segments, train=train,
                            num_classes=num_classes, seed=seed, flow_method=flow_method)
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
    path = _resolve(source, base_dir)
    if not path.is_file():
        raise ConfigError(f"manifest {str(path)!r} does not exist (a CSV with header path,label, "
                          "or synthetic:N)")
    try:
        from ..data import VideoDataset  # type: ignore[attr-defined]
        from ..data.manifest import check_num_classes
    except ImportError as err:
        raise ConfigError(f"cannot read manifest {str(path)!r}: adamml.data.VideoDataset is "
                          f"not available ({err})") from None
    ds = VideoDataset(str(path), input_spec, segments=segments, train=train,
                      on_error=on_error, seed=seed,
                      flow_dir=_resolve(flow_dir, base_dir) if flow_dir else None,
                      flow_method=flow_method, flow_on_demand=flow_on_demand)
    check_num_classes(ds.manifest, num_classes)
    return ds


def _resolve(path: str | Path, base_dir: str | Path | None) -> Path:
    path = Path(path)
    return Path(base_dir) / path if base_dir is not None and not path.is_absolute() else path


def parse_syntheticav(source: str, *, train: bool) -> tuple[int, str, dict[str, Any]]:
    """Split ``syntheticav:N[,split=S][,key=value...]`` into ``(N, split, options)``.

    ``split`` is ``train``, ``val`` or ``test`` (default: ``train`` for training data, else
    ``val``); ``flow_method`` (``tvl1``, the default and the paper's, ``farneback`` or ``dis``)
    chooses how flow inputs are computed (for a tiny flow model, 10 positions: about 58 s per
    video with TV-L1 on a 2-core CPU, 1.4 s with Farneback, 0.5 s with DIS); the other keys
    are `SyntheticConfig` fields (``p_neither=0.8``), values parsed as YAML scalars. The same ``seed`` and different splits give different videos.

    Raises:
        ConfigError: for a malformed source.

    Example:
        >>> parse_syntheticav("syntheticav:200,split=test,p_both=0.1", train=False)
        (200, 'test', {'p_both': 0.1})
    """
    from .config import parse_value

    head, *items = source.split(":", 1)[1].split(",")
    try:
        n = int(head)
    except ValueError:
        raise ConfigError(f"data source {source!r} must be syntheticav:N[,key=value...] with N "
                          "an integer") from None
    if n < 1:
        raise ConfigError(f"data source {source!r} needs at least one video")
    split, options = ("train" if train else "val"), {}
    for item in items:
        key, eq, text = item.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"data source {source!r}: {item!r} must look like key=value")
        if key.strip() == "split":
            split = text.strip()
        else:
            options[key.strip()] = parse_value(text.strip())
    return n, split, options


class _ModalitySubset(Dataset):
    """The items of a multi-modal in-memory dataset restricted to some modalities."""

    def __init__(self, dataset: Any, modalities: tuple[str, ...]) -> None:
        self.dataset, self.modalities = dataset, modalities
        self.classes = getattr(dataset, "classes", None)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[dict[str, Tensor], int]:
        inputs, label = self.dataset[index]
        return {m: inputs[m] for m in self.modalities}, label

    def set_epoch(self, epoch: int) -> None:
        self.dataset.set_epoch(epoch)


# Featurising SyntheticAV takes seconds; the demo trains five models on the same splits.
_SYNTHETICAV_CACHE: dict[tuple[Any, ...], Any] = {}
_SYNTHETICAV_CACHE_SIZE = 6


def clear_syntheticav_cache() -> None:
    """Forget the in-memory ``syntheticav:`` datasets built so far (frees their memory)."""
    _SYNTHETICAV_CACHE.clear()


def _syntheticav(source: str, input_spec: Mapping[str, Any], *, segments: int, train: bool,
                 num_classes: int, seed: int, flow_method: str = "tvl1") -> Dataset:
    from ..data.synthetic import SyntheticAV

    n, split, options = parse_syntheticav(source, train=train)
    shapes = {m: tuple(spec.shape) for m, spec in input_spec.items()}
    from ..data.flow import FlowMethod

    flow_method = str(options.pop("flow_method", flow_method))
    if flow_method not in get_args(FlowMethod):
        raise ConfigError(f"data source {source!r}: flow_method must be one of "
                          f"{', '.join(get_args(FlowMethod))}; got {flow_method!r}")
    key = (n, split, tuple(sorted({**options, "flow_method": flow_method}.items())), num_classes,
           seed, segments, train)
    # a cached dataset with a superset of the modalities (same shapes) serves a subset
    for (k, cached), ds in _SYNTHETICAV_CACHE.items():
        have = dict(cached)
        if k == key and all(have.get(m) == s for m, s in shapes.items()):
            return ds if set(shapes) == set(have) else _ModalitySubset(ds, tuple(shapes))
    source_ds = SyntheticAV(n, num_classes=num_classes, seed=seed, split=split,  # type: ignore
                            **options)
    ds = source_ds.tensors(input_spec, segments=segments, train=train, flow_method=flow_method)
    ds.classes = source_ds.classes  # type: ignore[attr-defined]
    while len(_SYNTHETICAV_CACHE) >= _SYNTHETICAV_CACHE_SIZE:
        _SYNTHETICAV_CACHE.pop(next(iter(_SYNTHETICAV_CACHE)))
    _SYNTHETICAV_CACHE[(key, tuple(sorted(shapes.items())))] = ds
    return ds


def collate_indexed(batch: list[tuple[int, Mapping[str, Any], Any]]
                    ) -> tuple[Tensor, dict[str, Any], Any]:
    """Collate ``(index, inputs, label)`` items: PyTorch's default collation, except that
    `adamml.data.FlowRequest` inputs (``flow_on_demand``) become one `adamml.data.OnDemandFlow`
    per batch, as `adamml.data.collate_clips` does for ``(inputs, label)`` items."""
    first = batch[0][1]
    if all(isinstance(v, Tensor) for v in first.values()):
        return default_collate(batch)
    from ..data import FlowRequest, OnDemandFlow

    lazy = [k for k, v in first.items() if isinstance(v, FlowRequest)]
    index, eager, label = default_collate([(i, {k: v for k, v in x.items() if k not in lazy}, y)
                                           for i, x, y in batch])
    sources = {k: OnDemandFlow([x[k] for _, x, _ in batch]) for k in lazy}
    return index, {k: sources[k] if k in sources else eager[k] for k in first}, label


def make_loader(dataset: Dataset, *, batch_size: int, info: DistInfo, train: bool, seed: int,
                workers: int = 0) -> tuple[DataLoader, DistributedSampler]:
    """A loader over ``(index, inputs, label)`` batches with this rank's share.

    Batches are collated by [`collate_indexed`][adamml.engine.data.collate_indexed], so
    on-demand flow items become one `OnDemandFlow` per batch.

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
                        num_workers=workers, drop_last=False, collate_fn=collate_indexed,
                        persistent_workers=False, pin_memory=info.device.type == "cuda")
    return loader, sampler
