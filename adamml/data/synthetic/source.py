"""``syntheticav:N[,split=S][,key=value...]``: SyntheticAV as a data source, featurised in memory.

Featurising SyntheticAV takes seconds (flow much longer), and an experiment trains several
models on the same splits, so a process keeps the inputs it has made, per modality: a run of an
RGB + flow model reuses the flow a flow-only run made before it when both sample alike
(`adamml.data.transforms.sampling_of`), and makes only its RGB (`clear_syntheticav_cache`
frees them). With ``ADAMML_SYNTHETIC_CACHE`` set to a folder (`DISK_CACHE_ENV`), the inputs are
also written there, and the other processes of an experiment read them instead of making them.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

import torch
from torch import Tensor
from torch.utils.data import Dataset

from ...errors import ConfigError
from ...registries import DATA_SOURCES
from ..sources import DataSource, SourceRequest, parse_source

if TYPE_CHECKING:
    from .dataset import Featurised

__all__ = [
    "SyntheticAVSource",
    "parse_syntheticav",
    "syntheticav_source",
    "clear_syntheticav_cache",
    "DISK_CACHE_ENV",
]


@dataclass
class _Cached:
    """The inputs of one split made with one sampling, per (modality, shape), as runs asked for
    them, with the labels and ground truth that sampling gives."""

    inputs: dict[tuple[str, tuple[int, ...]], Tensor]
    labels: Tensor
    evidence: Tensor


_CACHE: dict[tuple[Any, ...], _Cached] = {}
_CACHE_SIZE = 12


DISK_CACHE_ENV = "ADAMML_SYNTHETIC_CACHE"
"""Environment variable naming a folder where ``syntheticav:`` inputs are also kept on disk, so
that the processes of one experiment (a table's ``--jobs`` workers, a resumed run) make each
input once; unset: kept in memory only."""


def _disk_file(key: tuple[Any, ...], *part: Any) -> Path | None:
    folder = os.environ.get(DISK_CACHE_ENV)
    if not folder:
        return None
    from ... import __version__  # another version may make other inputs

    digest = hashlib.sha1(repr((__version__, key, *part)).encode()).hexdigest()[:24]
    return Path(folder) / f"{digest}.pt"


def _disk_load(path: Path | None) -> Any:
    """What ``path`` holds, or None when there is no such file (or it cannot be read: it is
    then made again and rewritten)."""
    if path is None or not path.exists():
        return None
    try:
        return torch.load(path, weights_only=True)
    except Exception as exc:  # a torn or foreign file: make the input again
        warnings.warn(f"ignoring unreadable syntheticav cache file {path}: {exc}", stacklevel=3)
        return None


def _disk_save(path: Path | None, value: Any) -> None:
    """Write ``value`` to ``path`` atomically (a temporary file, then a rename), so a process
    reading it sees all of it or nothing."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(value, tmp)
    os.replace(tmp, path)


def _from_disk(key: tuple[Any, ...], wanted: Mapping[str, tuple[int, ...]]) -> _Cached | None:
    """The inputs of ``wanted`` that another process of the experiment made, with the labels."""
    meta = _disk_load(_disk_file(key, "labels"))
    if meta is None:
        return None
    inputs = {(m, s): _disk_load(_disk_file(key, m, s)) for m, s in wanted.items()}
    return _Cached({k: v for k, v in inputs.items() if v is not None}, *meta)


def _inputs(
    key: tuple[Any, ...], spec: Mapping[str, Any], make: Callable[[Mapping[str, Any]], Any]
) -> Featurised:
    """The inputs of ``spec`` under ``key``: from this process's memory, else from the disk
    cache, else ``make(missing spec)`` (a `SyntheticTensorDataset`), kept in both."""
    from .dataset import Featurised

    if not spec:
        raise ConfigError("a syntheticav: data source was asked for no inputs")
    shapes = {m: tuple(s.shape) for m, s in spec.items()}
    cached = _CACHE.pop(key, None)  # put back last: the most recently used
    lacking = {m: s for m, s in shapes.items() if cached is None or (m, s) not in cached.inputs}
    if lacking and (found := _from_disk(key, lacking)) is not None:
        if cached is None:
            cached = _Cached({}, found.labels, found.evidence)
        cached.inputs.update(found.inputs)
    missing = {
        m: spec[m] for m, s in shapes.items() if cached is None or (m, s) not in cached.inputs
    }
    if missing:  # make only the inputs no earlier run of this experiment has made
        made = make(missing)
        if cached is None:
            cached = _Cached({}, made.labels, made.evidence)
        cached.inputs.update({(m, shapes[m]): made.inputs[m] for m in made.inputs})
        _disk_save(_disk_file(key, "labels"), (cached.labels, cached.evidence))
        for m in made.inputs:
            _disk_save(_disk_file(key, m, shapes[m]), made.inputs[m])
    assert cached is not None  # for type checkers: spec is not empty, so it was found or made
    while len(_CACHE) >= _CACHE_SIZE:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[key] = cached
    have = {m: cached.inputs.get((m, s)) for m, s in shapes.items()}
    return Featurised(
        {m: x for m, x in have.items() if x is not None}, cached.labels, cached.evidence
    )


def clear_syntheticav_cache() -> None:
    """Forget the in-memory ``syntheticav:`` inputs made so far (frees their memory)."""
    _CACHE.clear()


def _count(arg: str) -> int:
    try:
        n = int(arg)
    except ValueError:
        raise ConfigError(
            f"data source 'syntheticav:{arg}' must be syntheticav:N[,key=value...] "
            "with N an integer"
        ) from None
    if n < 1:
        raise ConfigError(f"data source 'syntheticav:{arg}' needs at least one video")
    return n


def _pop_split(options: dict[str, Any], train: bool) -> str:
    """The ``split`` option (default ``train`` for training data, else ``val``), removed."""
    return str(options.pop("split", "train" if train else "val"))


def syntheticav_source(n: int, split: str, options: Mapping[str, Any] | None = None) -> str:
    """The source string of ``n`` videos of one split (options sorted): the inverse of
    `parse_syntheticav`.

    Example:
        >>> syntheticav_source(300, "test", {"p_both": 0.1})
        'syntheticav:300,split=test,p_both=0.1'
    """
    opts = "".join(f",{k}={v}" for k, v in sorted((options or {}).items()))
    return f"syntheticav:{n},split={split}{opts}"


def parse_syntheticav(source: str, *, train: bool) -> tuple[int, str, dict[str, Any]]:
    """Split ``syntheticav:N[,split=S][,key=value...]`` into ``(N, split, options)``.

    ``split`` is ``train``, ``val`` or ``test`` (default: ``train`` for training data, else
    ``val``); ``flow_method`` (``tvl1``, the default and the paper's, ``farneback`` or ``dis``)
    chooses how flow inputs are computed (for a tiny flow model, 10 positions: about 58 s per
    video with TV-L1 on a 2-core CPU, 1.4 s with Farneback, 0.5 s with DIS) and ``flow_size``
    the shorter side of the frames it is computed on (256 as for real videos; 64, the rendered
    size, is about 16x faster); the other keys
    are `SyntheticConfig` fields (``p_neither=0.8``), values parsed as YAML scalars. The same
    ``seed`` and different splits give different videos.

    Raises:
        ConfigError: for a malformed source.

    Example:
        >>> parse_syntheticav("syntheticav:200,split=test,p_both=0.1", train=False)
        (200, 'test', {'p_both': 0.1})
    """
    scheme, arg, options = parse_source(source)
    if scheme != "syntheticav":
        raise ConfigError(f"data source {source!r} is not a syntheticav: source")
    split = _pop_split(options, train)
    return _count(arg), split, options


class SyntheticAVSource(DataSource):
    """``syntheticav:N[,split=S][,flow_method=M][,flow_size=P][,key=value...]``: `SyntheticAV`
    featurised in memory (`SyntheticAV.tensors`); see `parse_syntheticav` for the options."""

    def flow_method(self, arg: str, options: Mapping[str, Any]) -> str | None:
        method = options.get("flow_method")
        return None if method is None else str(method)

    def open(self, arg: str, options: Mapping[str, Any], request: SourceRequest) -> Dataset:
        from ..flow import FLOW_SIZE, FlowMethod
        from ..transforms import sampling_of
        from .dataset import SyntheticAV

        n, options = _count(arg), dict(options)
        split = _pop_split(options, request.train)
        flow_method = str(options.pop("flow_method", request.flow_method))
        if flow_method not in get_args(FlowMethod):
            raise ConfigError(
                f"data source 'syntheticav:{arg}': flow_method must be one of "
                f"{', '.join(get_args(FlowMethod))}; got {flow_method!r}"
            )
        flow_size = options.pop("flow_size", FLOW_SIZE)
        if isinstance(flow_size, bool) or not isinstance(flow_size, int) or flow_size < 16:
            raise ConfigError(
                f"data source 'syntheticav:{arg}': flow_size must be an integer >= 16 (the "
                f"shorter side of the frames flow is computed on); got {flow_size!r}"
            )
        like = request.sample_like or request.input_spec
        key = (
            n,
            split,
            tuple(sorted({**options, "flow_method": flow_method, "flow_size": flow_size}.items())),
            request.num_classes,
            request.seed,
            request.segments,
            request.train,
            # an input is the same tensor whatever it is made beside only when sampled alike:
            # RGB beside RGB difference sits on other frames than RGB alone, audio beside
            # 4-frame RGB on other windows (`sampling_of`)
            sampling_of(like),
        )
        videos = SyntheticAV(
            n, num_classes=request.num_classes, seed=request.seed, split=split, **options
        )  # type: ignore[arg-type]
        featurised = _inputs(
            key,
            request.input_spec,
            lambda missing: videos.tensors(
                missing,
                segments=request.segments,
                train=request.train,
                flow_method=flow_method,
                flow_size=flow_size,
                sample_like=like,
            ),  # type: ignore[arg-type]
        )
        ds = videos.tensors(
            request.input_spec,
            segments=request.segments,
            train=request.train,
            sample_like=like,
            featurised=featurised,
        )  # type: ignore[arg-type]
        ds.classes = videos.classes  # type: ignore[attr-defined]
        return ds


DATA_SOURCES.register("syntheticav", SyntheticAVSource())
