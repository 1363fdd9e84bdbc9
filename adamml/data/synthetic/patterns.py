"""``synthetic:N``: Gaussian class patterns in every modality, for tests and smoke runs.

Unlike `SyntheticAV` (rendered shapes and tones, evidence per segment), these are not videos:
every item is unit Gaussian noise plus a fixed per-class pattern of the model's input shape,
in every modality and on every segment. Any modality works, flow included, with no rendering.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from ...errors import ConfigError
from ...registries import DATA_SOURCES
from ..sources import DataSource, SourceRequest

__all__ = ["GaussianPatternDataset", "GaussianPatternSource"]


class GaussianPatternDataset(Dataset):
    """``N`` deterministic items of Gaussian noise plus a per-class pattern (``synthetic:N``).

    Item ``i`` has label ``i % K``; each modality is Gaussian noise plus a fixed per-class
    pattern, so every modality carries the label (with ``strength`` setting how clearly).
    Item ``i`` is the same tensor whatever process, order or epoch asks for it.

    Args:
        num_videos: N.
        input_spec: ``{modality: InputSpec}`` (``model.input_spec``).
        segments: S.
        num_classes: K.
        seed: seeds the class patterns (shared by the splits of one run).
        noise_seed: seeds the per-item noise (differs between splits); default ``seed``.
        strength: scale of the class pattern relative to unit noise.

    Example:
        >>> from adamml.modalities import InputSpec
        >>> ds = GaussianPatternDataset(4, {"rgb": InputSpec((2, 3, 8, 8))}, 3, 2)
        >>> x, y = ds[1]
        >>> tuple(x["rgb"].shape), y
        ((3, 2, 3, 8, 8), 1)
    """

    def __init__(
        self,
        num_videos: int,
        input_spec: Mapping[str, Any],
        segments: int,
        num_classes: int,
        *,
        seed: int = 0,
        noise_seed: int | None = None,
        strength: float = 1.0,
    ) -> None:
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


class GaussianPatternSource(DataSource):
    """``synthetic:N[,strength=s]``: a `GaussianPatternDataset` of N items.

    Training and evaluation sources of one run share the class patterns (``seed``) and draw
    different noise, so validation items are held out; all evaluation splits share one noise
    stream (``synthetic:50`` holds the first 50 items of ``synthetic:100`` when not training).
    """

    def open(self, arg: str, options: Mapping[str, Any], request: SourceRequest) -> Dataset:
        source = f"synthetic:{arg}"
        try:
            n = int(arg)
        except ValueError:
            raise ConfigError(
                f"data source {source!r} must be synthetic:N with N an integer"
            ) from None
        if n < 1:
            raise ConfigError(f"data source {source!r} needs at least one video")
        unknown = sorted(set(options) - {"strength"})
        if unknown:
            raise ConfigError(
                f"data source {source!r}: unknown option(s) "
                f"{', '.join(unknown)}; synthetic: takes strength="
            )
        seed = request.seed
        return GaussianPatternDataset(
            n,
            request.input_spec,
            request.segments,
            request.num_classes,
            seed=seed,
            noise_seed=seed * 2 + (0 if request.train else 1),
            strength=float(options.get("strength", 1.0)),
        )


DATA_SOURCES.register("synthetic", GaussianPatternSource())
