"""Data sources: what a config's ``data.train`` (``val``, ``test``) string names, as a registry.

A source string is either a manifest path (the default) or ``scheme:arg[,key=value...]`` where
``scheme`` is a registered source:

| source | what it is |
| --- | --- |
| ``path/to/train.csv`` or ``manifest:path`` | a manifest of video files (`VideoDataset`) |
| ``synthetic:N[,strength=s]`` | N videos of Gaussian noise plus a per-class pattern |
| ``syntheticav:N[,split=test,key=value...]`` | N `SyntheticAV` videos, featurised in memory |

```
"syntheticav:300,split=test" --parse_source--> ("syntheticav", "300", {"split": "test"})
        --DATA_SOURCES["syntheticav"].open(arg, options, request)--> Dataset of (inputs, label)
```

Plugins add sources through the entry-point group ``adamml.data_sources``; the entry point
names an instance of a [`DataSource`][adamml.data.sources.DataSource] subclass.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from ..errors import ConfigError
from ..registries import DATA_SOURCES

__all__ = [
    "DATA_SOURCES",
    "DataSource",
    "SourceRequest",
    "ManifestSource",
    "parse_source",
    "build_dataset",
    "source_flow_method",
    "list_data_sources",
]

# two or more characters, so that a Windows drive letter ("C:/data/train.csv") is a path
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9_.-]+):(?!//)(.*)$", re.S)


@dataclass(frozen=True)
class SourceRequest:
    """What the caller needs from a source, whatever the source is.

    Attributes:
        input_spec: ``{modality: InputSpec}`` (``model.input_spec``).
        segments: S.
        train: training sampling and augmentation (and, for synthetic sources, the split).
        num_classes: K (synthetic sources generate that many classes).
        seed: seeds synthetic data and the dataset's own sampling.
        on_error: ``raise``, ``skip`` or ``warn`` for unreadable videos (manifests).
        base_dir: folder that relative paths resolve against (the config's).
        flow_dir: stored flow (``adamml extract flow``) of a manifest's videos.
        flow_method: how flow is computed from frames, unless the source names its own.
        flow_on_demand: a manifest's flow as `FlowRequest` items (evaluation).
        sample_like: sample the clips as for these inputs, a superset of ``input_spec``
            (`adamml.data.ClipTransform`'s ``sample_like``: a run's pre-training stage sees
            the frames its model sees); ``None``: as for ``input_spec``. A source that
            samples no frames may ignore it.
    """

    input_spec: Mapping[str, Any]
    segments: int
    train: bool
    num_classes: int
    seed: int = 0
    on_error: str = "raise"
    base_dir: str | Path | None = None
    flow_dir: str | Path | None = None
    flow_method: str = "tvl1"
    flow_on_demand: bool = False
    sample_like: Mapping[str, Any] | None = None

    def resolve(self, path: str | Path) -> Path:
        """``path`` against ``base_dir`` unless it is absolute."""
        path = Path(path)
        if self.base_dir is not None and not path.is_absolute():
            return Path(self.base_dir) / path
        return path


class DataSource:
    """One kind of data source (a registered ``scheme``).

    Subclasses implement `open`; a source that computes optical flow its own way says so in
    `flow_method`, so that evaluation computes flow as training did.
    """

    def open(self, arg: str, options: Mapping[str, Any], request: SourceRequest) -> Dataset:
        """The dataset of ``scheme:arg[,options]``: items ``(inputs, label)`` with inputs
        ``{modality: (S, T, C, H, W)}`` tensors as ``request.input_spec`` describes.

        Raises:
            ConfigError: for a malformed ``arg`` or an unknown option.
        """
        raise NotImplementedError

    def flow_method(self, arg: str, options: Mapping[str, Any]) -> str | None:
        """The flow method this source's string fixes, or ``None`` (the config's is used)."""
        return None


def _scalar(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def parse_source(source: str) -> tuple[str, str, dict[str, Any]]:
    """Split a data-source string into ``(scheme, arg, options)``.

    A string without a registered ``scheme:`` prefix is a manifest path (scheme ``manifest``,
    no options). Option values are YAML scalars (``p_both=0.1`` gives a float).

    Raises:
        UnknownDataSourceError: for a ``scheme:`` that no source provides (when no file of
            that name exists either), with close matches.
        ConfigError: for an option that is not ``key=value``.

    Example:
        >>> parse_source("syntheticav:200,split=test,p_both=0.1")
        ('syntheticav', '200', {'split': 'test', 'p_both': 0.1})
        >>> parse_source("data/train.csv")
        ('manifest', 'data/train.csv', {})
    """
    match = _SCHEME.match(str(source))
    if match is None:
        return "manifest", str(source), {}
    scheme, rest = match.groups()
    if scheme not in DATA_SOURCES:
        if Path(source).exists():
            return "manifest", str(source), {}
        DATA_SOURCES.resolve(scheme)  # raises with the known sources
    if scheme == "manifest":
        return scheme, rest, {}
    head, *items = rest.split(",")
    options: dict[str, Any] = {}
    for item in items:
        key, eq, text = item.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"data source {source!r}: {item!r} must look like key=value")
        options[key.strip()] = _scalar(text.strip())
    return DATA_SOURCES.resolve(scheme), head.strip(), options


def build_dataset(
    source: str,
    input_spec: Mapping[str, Any],
    *,
    segments: int,
    train: bool,
    num_classes: int,
    seed: int = 0,
    on_error: str = "raise",
    base_dir: str | Path | None = None,
    flow_dir: str | Path | None = None,
    flow_method: str = "tvl1",
    flow_on_demand: bool = False,
    sample_like: Mapping[str, Any] | None = None,
) -> Dataset:
    """The dataset a data-source string names (see the module's table).

    Args:
        source: a manifest path (relative to ``base_dir``) or ``scheme:arg[,key=value...]``.
        input_spec: what to make (the rest as in
            [`SourceRequest`][adamml.data.sources.SourceRequest]).
        segments: S.
        train: training sampling and augmentation.
        num_classes: K, checked against the source's classes.
        seed: base seed of the per-item generators.
        on_error: ``"raise"``, ``"skip"`` or ``"warn"`` for a bad file.
        base_dir: where relative manifest paths start.
        flow_dir: stored flow from ``adamml extract flow``.
        flow_method: how flow is computed otherwise.
        flow_on_demand: flow only for the segments the policy selects.
        sample_like: sample as for these inputs (see `SourceRequest`).

    Returns:
        A dataset of ``(inputs, label)`` items.

    Raises:
        UnknownDataSourceError: for an unknown scheme.
        ConfigError: for a malformed source or a missing manifest.

    Example:
        >>> from adamml.modalities import InputSpec
        >>> ds = build_dataset("synthetic:4", {"rgb": InputSpec((2, 3, 8, 8))}, segments=3,
        ...                    train=True, num_classes=2)
        >>> len(ds)
        4
    """
    scheme, arg, options = parse_source(source)
    request = SourceRequest(
        input_spec,
        segments,
        train,
        num_classes,
        seed,
        on_error,
        base_dir,
        flow_dir,
        flow_method,
        flow_on_demand,
        sample_like,
    )
    return DATA_SOURCES.get(scheme).open(arg, options, request)


def list_data_sources(pattern: str = "*") -> list[str]:
    """The registered data-source schemes (plugins included), e.g. ``['manifest', 'synthetic',
    'syntheticav']``; ``adamml list sources`` prints them."""
    return DATA_SOURCES.list(pattern)


def source_flow_method(source: str | None) -> str | None:
    """The flow method a data-source string fixes (``syntheticav:8,flow_method=dis`` -> ``dis``),
    ``None`` when it fixes none or is not a known source (a plugin that is not installed)."""
    if not source:
        return None
    try:
        scheme, arg, options = parse_source(source)
        return DATA_SOURCES.get(scheme).flow_method(arg, options)
    except (ConfigError, KeyError):
        return None


class ManifestSource(DataSource):
    """A manifest CSV (``path,label``) of video files: `adamml.data.VideoDataset`."""

    def open(self, arg: str, options: Mapping[str, Any], request: SourceRequest) -> Dataset:
        path = request.resolve(arg)
        if not path.is_file():
            raise ConfigError(
                f"manifest {str(path)!r} does not exist (a CSV with header "
                "path,label, or a data source such as synthetic:N)"
            )
        from .dataset import VideoDataset
        from .manifest import check_num_classes

        flow_dir = request.resolve(request.flow_dir) if request.flow_dir else None
        ds = VideoDataset(
            str(path),
            request.input_spec,
            segments=request.segments,
            train=request.train,
            on_error=request.on_error,
            seed=request.seed,
            flow_dir=flow_dir,
            flow_method=request.flow_method,
            flow_on_demand=request.flow_on_demand,
            sample_like=request.sample_like,
        )
        # before training or evaluation: a label past K fails deep in the loss otherwise
        check_num_classes(ds.manifest, request.num_classes)
        return ds


DATA_SOURCES.register("manifest", ManifestSource())
