"""How a modality's input is made from a video: the `InputProducer` contract.

Every modality names its producer (``Modality.producer``);
[`ClipTransform`][adamml.data.ClipTransform] asks each one which decoded frames it needs,
decodes them once for all, and lets each make its ``(S, T, C, H, W)`` input from a
[`ClipContext`][adamml.data.producers.ClipContext]. The built-ins are written on this contract
too: `RGBFrames`, `RGBDifference`, `OpticalFlow` and `AudioSpectrogram`.
Three ways to make an input:

- from the decoded frames at the sampled indices (``frames_needed`` then ``ctx.frames`` /
  ``ctx.spatial``: RGB, RGB difference, flow);
- from the container itself (``ctx.path``: other streams, side data, timestamps; e.g. codec
  motion vectors, see ``examples/plugins/adamml-mv``) or the audio track (``needs_audio``);
- from a side file per video named in a manifest column (``ctx.side_file(column)``;
  [`SideFileInput`][adamml.data.producers.SideFileInput] reads ``.npy``/``.pt`` arrays).

A producer raises a [`DataError`][adamml.data.errors.DataError] subclass naming the file when
it cannot make its input; `VideoDataset`'s ``on_error`` then raises, skips or warns. A producer
may return a [`SegmentRequest`][adamml.data.producers.SegmentRequest] instead of a tensor to be
computed later, only for the segments the policy selects (``on_demand``, like flow).
See docs/components/modality-plugins.md.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError
from ..modalities import InputSpec
from .audio import audio_window, log_spectrogram
from .decode import takes_short
from .errors import DataError, MissingSideFileError
from .spatial import SpatialParams, crop_flip, resize_short, spatial_short

__all__ = [
    "InputProducer",
    "ClipContext",
    "ProducerOptions",
    "SegmentRequest",
    "RGBFrames",
    "RGBDifference",
    "OpticalFlow",
    "AudioSpectrogram",
    "SideFileInput",
    "producer_for",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
]

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
FrameGetter = Callable[[Sequence[int]], np.ndarray]


class SegmentRequest:
    """An input made later, per segment: what a producer returns for on-demand computation.

    [`collate_clips`][adamml.data.collate_clips] turns a batch of requests into one
    SegmentSource with ``type(request).batch(requests)`` (``.shape``, ``gather(b, s)``, see
    `OnDemandFlow`), which the router asks only for the selected segments.
    """

    @classmethod
    def batch(cls, requests: Sequence[Any], *, device: torch.device | str = "cpu") -> Any:
        """One SegmentSource for a batch of this class's requests."""
        raise NotImplementedError(f"{cls.__name__}.batch")


@dataclass(frozen=True)
class ProducerOptions:
    """Settings the built-in producers read (`ClipTransform` arguments of the same names)."""

    flow_method: str = "tvl1"
    flow_reduced: bool = False
    flow_size: int = 256
    flow_on_demand: bool = False
    flow_device: torch.device = torch.device("cpu")
    rgbdiff_uint8: bool = False


@dataclass
class ClipContext:
    """What a producer may read of one clip (one video, one draw of the sampling).

    Attributes:
        num_frames: frames in the video.
        fps: its frame rate.
        segments: S.
        train: training (random sampling and augmentation) or evaluation.
        rng: the clip's generator; draw from it, never from global state.
        get_frames: the decoder: frame indices -> ``(n, H, W, 3)`` uint8 RGB (decodes; for
            on-demand requests, which must stay picklable).
        centres: ``(S,)`` segment centre times in seconds (audio windows).
        audio: ``(n,)`` float32 mono at 24 kHz when a producer ``needs_audio``, else ``None``.
        path: the video file (``None`` for in-memory clips).
        columns: the manifest row's other columns, ``{name: value}`` as written.
        root: the folder relative side-file paths start from (the manifest's).
        stored_flow: stored flow fields (``adamml extract flow``), pair starts -> ``(n, H, W, 2)``.
        options: the built-in producers' settings.
    """

    num_frames: int
    fps: float
    segments: int
    train: bool
    rng: np.random.Generator
    get_frames: FrameGetter
    centres: np.ndarray
    audio: np.ndarray | None = None
    path: Path | None = None
    columns: Mapping[str, str] = field(default_factory=dict)
    root: Path | None = None
    stored_flow: FrameGetter | None = None
    options: ProducerOptions = field(default_factory=ProducerOptions)
    _order: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    _raw: np.ndarray | None = None
    _scaled: dict[Any, np.ndarray] = field(default_factory=dict)
    _resized: dict[int, np.ndarray] = field(default_factory=dict)

    def frames(self, indices: np.ndarray) -> np.ndarray:
        """Decoded frames ``(*indices.shape, H, W, 3)`` uint8, from the clip's one decode.

        Only the frames some producer listed in ``frames_needed`` were decoded.
        """
        if self._raw is None and len(self._order):  # the decode was made at a short side
            self._raw = self.get_frames(self._order.tolist())
        return self._raw[np.searchsorted(self._order, np.asarray(indices))]  # type: ignore[index]

    def spatial(
        self, indices: np.ndarray, size: tuple[int, int], params: SpatialParams
    ) -> np.ndarray:
        """Decoded frames scaled, cropped and flipped like the clip's other visual inputs,
        ``(len(indices), h, w, 3)``; shared by producers that ask for the same ``(size,
        params)`` (RGB and RGB difference scale each frame once)."""
        key = (tuple(size), params)
        if key not in self._scaled:
            resized = self._resized_all(spatial_short(size, params))
            self._scaled[key] = crop_flip(resized, size, params)
        return self._scaled[key][np.searchsorted(self._order, np.asarray(indices).reshape(-1))]

    def resized(self, indices: np.ndarray, short: int) -> np.ndarray:
        """Decoded frames with the shorter side resized to ``short``, ``(*indices.shape, h, w,
        3)`` uint8 (`resize_short`): each decoded frame is resized once per ``short`` for every
        producer of the clip (the RGB crops and the frames flow is computed on, both at 256 in
        evaluation), and no copy of the full-size frames is made."""
        pos = np.searchsorted(self._order, np.asarray(indices))
        return self._resized_all(short)[pos]

    def _resized_all(self, short: int) -> np.ndarray:
        if short not in self._resized:
            self._resized[short] = resize_short(self.frames(self._order), short)
        return self._resized[short]

    def side_file(self, column: str) -> Path:
        """The file the manifest row names in ``column`` (relative to the manifest).

        Raises:
            MissingSideFileError: naming the video, the column and the file, when the row has
                no such column or the file does not exist.
        """
        value = (self.columns.get(column) or "").strip()
        if not value:
            raise MissingSideFileError(
                f"{self.path}: the manifest row has no {column!r} column value; add a "
                f"{column!r} column naming this video's file"
            )
        path = Path(value)
        if not path.is_absolute() and self.root is not None:
            path = self.root / path
        if not path.exists():
            raise MissingSideFileError(f"{self.path}: its {column} file {path} does not exist")
        return path

    def _decode(self, needed: set[int], shorts: set[int] | None = None) -> None:
        """Decode the ``needed`` frames once for every producer. With ``shorts``, the only
        shorter sides any producer reads the frames at (`InputProducer.short_sides`), a
        decoder that resizes as it decodes (``VideoReader.get_frames(short=)``) makes them
        at that side directly when there is one, and the full-size frames are only decoded if
        ``frames`` is called."""
        self._order = np.array(sorted(needed), dtype=np.int64)
        self._raw, self._scaled, self._resized = None, {}, {}
        if not len(self._order):
            return
        if shorts is not None and len(shorts) == 1 and takes_short(self.get_frames):
            short = next(iter(shorts))
            self._resized[short] = self.get_frames(self._order.tolist(), short=short)  # type: ignore[call-arg]
        else:
            self._raw = self.get_frames(self._order.tolist())


class InputProducer:
    """How one modality's input is made from a video (subclass and override `make`).

    Attributes:
        kind: a short name for listings and messages (``"rgb"``, ``"flow"``, ...).
        uses_frames: the input follows the sampled segment frames (``(S, T)`` indices); False
            for inputs made per segment centre (audio).
        needs_audio: the audio track must be decoded.
        spatial: takes the clip's shared crop and flip (else the producer resizes on its own
            and ignores ``params``).
        x_channels: channels holding horizontal displacements, negated by a horizontal flip
            (flow and motion vectors: ``slice(0, None, 2)``).
        on_demand: may return a `SegmentRequest` (computed only for selected segments).
    """

    kind: str = ""
    uses_frames: bool = True
    needs_audio: bool = False
    spatial: bool = True
    x_channels: slice | None = None
    on_demand: bool = False

    def stack(self, spec: InputSpec) -> int:
        """Consecutive raw frames one sampled frame covers (sampling keeps them in range)."""
        return 1

    def frames_needed(self, spec: InputSpec, indices: np.ndarray, ctx: ClipContext) -> np.ndarray:
        """Frame indices this input reads from the clip's one decode (none by default)."""
        return np.zeros(0, np.int64)

    def short_sides(
        self, spec: InputSpec, params: SpatialParams, ctx: ClipContext
    ) -> set[int] | None:
        """The shorter sides this input reads the decoded frames at (``ctx.spatial``,
        ``ctx.resized``), or None if it may read them at full size (``ctx.frames``; the
        default). When every input that needs frames names one and the same side, the clip is
        decoded at that side directly."""
        return None

    def make(
        self, spec: InputSpec, indices: np.ndarray, params: SpatialParams, ctx: ClipContext
    ) -> Tensor | SegmentRequest:
        """The input ``(S, T', C, H, W)`` (``T' = indices.shape[1]``; audio ``(S, 1, 1, F, W)``).

        Args:
            spec: the shape to produce (``spec.shape`` is ``(T, C, H, W)``).
            indices: ``(S, T')`` frame indices of the segments (a policy view may ask for a
                subset of the T frames).
            params: the clip's crop/flip for this input.
            ctx: the clip.
        """
        raise NotImplementedError(f"{type(self).__name__}.make")

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


_MEAN = torch.from_numpy(IMAGENET_MEAN).view(3, 1, 1)
_STD = torch.from_numpy(IMAGENET_STD).view(3, 1, 1)


def _float32(u8: Tensor) -> Tensor:
    """A new contiguous float32 tensor of ``u8``'s shape (any strides): one converting pass."""
    return torch.empty(u8.shape, dtype=torch.float32).copy_(u8)


def _channels_first(frames: np.ndarray, shape: tuple[int, ...]) -> Tensor:
    """uint8 frames ``(n, h, w, 3)`` as a uint8 view ``shape + (3, h, w)`` (no copy)."""
    return torch.from_numpy(frames).reshape(*shape, *frames.shape[-3:]).movedim(-1, -3)


def _normalise_rgb(x: Tensor) -> Tensor:
    """ImageNet normalisation of 0..255 values ``(..., 3, h, w)``, in place.

    The float32 operations and their order are those of the NumPy expression
    ``(x / 255 - mean) / std`` on float32, so the values are the same bits; done in place on
    one tensor, they touch a fraction of the memory NumPy's temporaries did (for the 240
    frames of a clip's RGB difference, 4.5 s became well under a second).
    """
    return x.div_(255.0).sub_(_MEAN).div_(_STD)


def _stack_indices(indices: np.ndarray, n: int, num_frames: int) -> np.ndarray:
    return np.clip(indices[..., None] + np.arange(n + 1), 0, num_frames - 1)


class RGBFrames(InputProducer):
    """RGB frames, scaled, cropped, flipped and ImageNet-normalised (AdaMML appendix B)."""

    kind = "rgb"

    def frames_needed(self, spec: InputSpec, indices: np.ndarray, ctx: ClipContext) -> np.ndarray:
        return indices.reshape(-1)

    def short_sides(self, spec: InputSpec, params: SpatialParams, ctx: ClipContext) -> set[int]:
        return {spatial_short(spec.size, params)}

    def make(
        self, spec: InputSpec, indices: np.ndarray, params: SpatialParams, ctx: ClipContext
    ) -> Tensor:
        frames = ctx.spatial(indices.reshape(-1), spec.size, params)
        return _normalise_rgb(_float32(_channels_first(frames, indices.shape)))


class RGBDifference(InputProducer):
    """RGB difference: ``C / 3`` consecutive frame differences per sampled frame (Table 2).

    Values are ``(d + 255) / 510`` ImageNet-normalised; ``options.rgbdiff_uint8`` truncates to
    uint8 first, as the reference does.
    """

    kind = "rgbdiff"

    def stack(self, spec: InputSpec) -> int:
        return spec.channels // 3

    def frames_needed(self, spec: InputSpec, indices: np.ndarray, ctx: ClipContext) -> np.ndarray:
        return _stack_indices(indices, self.stack(spec), ctx.num_frames).reshape(-1)

    def short_sides(self, spec: InputSpec, params: SpatialParams, ctx: ClipContext) -> set[int]:
        return {spatial_short(spec.size, params)}

    def make(
        self, spec: InputSpec, indices: np.ndarray, params: SpatialParams, ctx: ClipContext
    ) -> Tensor:
        n = self.stack(spec)
        ix = _stack_indices(indices, n, ctx.num_frames)  # (S, T, n+1)
        f = ctx.spatial(ix.reshape(-1), spec.size, params)
        u8 = _channels_first(f, ix.shape)  # (S, T, n + 1, 3, h, w)
        d = _float32(u8[:, :, 1:]).sub_(u8[:, :, :-1])
        # float32 in place, in the order of the reference's expressions
        if ctx.options.rgbdiff_uint8:
            d.add_(255.0).mul_(255.0).div_(510.0).floor_().div_(255.0)
        else:
            d.add_(255.0).div_(510.0)
        d = d.sub_(_MEAN).div_(_STD)
        return d.reshape(indices.shape[0], indices.shape[1], 3 * n, *spec.size).contiguous()


class OpticalFlow(InputProducer):
    """TV-L1 (or RAFT) optical flow, ``C / 2`` interleaved x/y pairs per sampled frame.

    Read from stored flow when the clip has it; otherwise computed from the decoded frames, or
    returned as a `FlowRequest` (computed only for selected segments) with
    ``options.flow_on_demand``.
    """

    kind = "flow"
    x_channels = slice(0, None, 2)
    on_demand = True

    def stack(self, spec: InputSpec) -> int:
        return spec.channels // 2

    def _eager(self, ctx: ClipContext) -> bool:
        return ctx.stored_flow is None and not ctx.options.flow_on_demand

    def frames_needed(self, spec: InputSpec, indices: np.ndarray, ctx: ClipContext) -> np.ndarray:
        if not self._eager(ctx):
            return np.zeros(0, np.int64)
        return _stack_indices(indices, self.stack(spec), ctx.num_frames).reshape(-1)

    def short_sides(self, spec: InputSpec, params: SpatialParams, ctx: ClipContext) -> set[int]:
        return {ctx.options.flow_size}

    def make(
        self, spec: InputSpec, indices: np.ndarray, params: SpatialParams, ctx: ClipContext
    ) -> Tensor | SegmentRequest:
        from .flowclip import FlowRequest, compute_fields, flow_pairs, flow_segments

        n, o = self.stack(spec), ctx.options
        if ctx.options.flow_on_demand and ctx.stored_flow is None:
            return FlowRequest(
                ctx.get_frames,
                ctx.num_frames,
                indices,
                n,
                spec.size,
                params,
                o.flow_method,  # type: ignore[arg-type]
                o.flow_reduced,
                o.flow_size,
            )
        pairs = flow_pairs(indices, n, ctx.num_frames)
        starts = np.unique(pairs).tolist()
        if ctx.stored_flow is not None:
            fields = dict(zip(starts, ctx.stored_flow(starts)))
        else:
            fields = compute_fields(
                lambda ix: ctx.resized(np.asarray(ix), o.flow_size),
                starts,
                ctx.num_frames,
                method=o.flow_method,  # type: ignore[arg-type]
                reduced=o.flow_reduced,
                flow_size=o.flow_size,
                device=o.flow_device,
            )
        return flow_segments(fields.__getitem__, pairs, spec.size, params)


class AudioSpectrogram(InputProducer):
    """The 256x256 log-spectrogram of the 1.28 s around each segment's centre (24 kHz mono),
    pooled to the spec's ``(F, W)``; zeros when the clip has no audio."""

    kind = "audio"
    uses_frames = False
    needs_audio = True
    spatial = False

    def make(
        self, spec: InputSpec, indices: np.ndarray, params: SpatialParams, ctx: ClipContext
    ) -> Tensor:
        if ctx.audio is None or np.size(ctx.audio) == 0:
            return torch.zeros(ctx.segments, *spec.shape)
        waves = np.stack([audio_window(ctx.audio, float(c)) for c in ctx.centres])
        spec_img = log_spectrogram(torch.from_numpy(waves))  # (S, 256, 256)
        if tuple(spec_img.shape[-2:]) != spec.size:
            spec_img = F.adaptive_avg_pool2d(spec_img[:, None], spec.size)[:, 0]
        return spec_img.reshape(ctx.segments, *spec.shape)


class SideFileInput(InputProducer):
    """An input computed by another tool: one array file per video, named in a manifest column.

    The file (``.npy``, or ``.pt`` holding a tensor) holds per-frame features
    ``(num_frames, C, H, W)``; the producer takes the frames at the sampled indices and resizes
    them to the spec's ``(H, W)`` (bilinear). No crop or flip (``spatial=False``): the tool that
    made the features decided their geometry. Files are read whole once per clip.

    Args:
        column: the manifest column, e.g. ``"depth"``.
        kind: the name in listings (default: the column).

    Raises (from `make`):
        MissingSideFileError: no value in the column, or the file is missing.
        DataError: the file cannot be read or has the wrong shape (named in the message).

    Example:
        >>> from adamml.modalities import Modality
        >>> depth = Modality("depth", channels=1, frames=4, size=(32, 32),
        ...                  producer=SideFileInput("depth"))
    """

    spatial = False

    def __init__(self, column: str, *, kind: str | None = None) -> None:
        self.column = column
        self.kind = kind or column

    def make(
        self, spec: InputSpec, indices: np.ndarray, params: SpatialParams, ctx: ClipContext
    ) -> Tensor:
        path = ctx.side_file(self.column)
        try:
            if path.suffix == ".npy":
                data = torch.from_numpy(np.load(path, allow_pickle=False))
            else:
                data = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # unreadable or damaged: one typed error naming the file
            raise DataError(f"{ctx.path}: cannot read its {self.column} file {path}: {e}") from e
        if not isinstance(data, Tensor) or data.dim() != 4 or data.shape[1] != spec.channels:
            shape = tuple(data.shape) if isinstance(data, Tensor) else type(data).__name__
            raise DataError(
                f"{ctx.path}: its {self.column} file {path} must hold (num_frames, "
                f"{spec.channels}, H, W) per-frame features; got {shape}"
            )
        ix = torch.from_numpy(np.clip(indices, 0, data.shape[0] - 1).reshape(-1))
        x = data[ix].float()
        if tuple(x.shape[-2:]) != spec.size:
            x = F.interpolate(x, size=spec.size, mode="bilinear", align_corners=False)
        return x.reshape(*indices.shape, spec.channels, *spec.size).contiguous()

    def __repr__(self) -> str:
        return f"SideFileInput({self.column!r})"


def _resolve(value: Any, where: str) -> InputProducer:
    if isinstance(value, str):
        module, _, attr = value.partition(":")
        try:
            value = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            raise ConfigError(f"{where}: cannot import its producer {value!r}: {e}") from e
    if isinstance(value, type):
        value = value()
    if not isinstance(value, InputProducer):
        raise ConfigError(
            f"{where}: its producer must be an InputProducer (or 'module:Class'); "
            f"got {type(value).__name__}"
        )
    return value


def producer_for(key: str, spec: InputSpec) -> InputProducer:
    """The producer of input ``key`` with ``spec``: the registered modality's ``producer``.

    The modality is looked up by ``spec.modality`` (then ``key``), so tiny twins and renamed
    inputs keep their modality's producer.

    Raises:
        ConfigError: the modality is not registered (is its plugin installed?) or does not say
            how its input is made.
    """
    from ..registries import MODALITIES

    names = [n for n in (spec.modality, key) if n]
    found = next((n for n in names if n in MODALITIES), None)
    if found is None:
        raise ConfigError(
            f"no data pipeline for input {key!r}: modality {names[0]!r} is not registered "
            "(install the plugin that provides it; `adamml list modalities` shows what is "
            "installed)"
        )
    modality = MODALITIES.get(found)
    producer = getattr(modality, "producer", None)
    if producer is None:
        raise ConfigError(
            f"no data pipeline for modality {found!r}: its Modality has no producer, so adamml "
            "cannot make its input from a video; set Modality(producer=...) (see 'Writing a "
            "modality plugin' in the docs), or pass the inputs as tensors"
        )
    return _resolve(producer, f"modality {found!r}")
