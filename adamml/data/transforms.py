"""`ClipTransform`: from a frame getter and an audio track to the model's input dict.

AdaMML appendix B and reference §8: S segments of T frames (stride 4); RGB scaled, cropped,
flipped and ImageNet-normalised; RGB difference as 5 stacked frame differences (15 channels);
optical flow as 5 interleaved x/y pairs (10 channels); audio as the 256x256 log-spectrogram of
the 1.28 s around each segment's centre frame. One crop/flip is drawn per clip and shared by the
visual modalities (``independent_augment=True`` draws one per modality, as the reference does).

Each input is made by its modality's [`InputProducer`][adamml.data.producers.InputProducer]
(``Modality.producer``): built-ins and plugins alike. The transform samples the segments, asks
every producer which frames it reads, decodes them once, and lets each make its input.

Input specs smaller than the paper's are produced by scaling: visual crops equal the spec size
(shorter side ``size * 256 / 224``), and the 256x256 spectrogram is reduced to the spec's
``(F, W)`` by adaptive average pooling.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..errors import ConfigError
from ..modalities import InputSpec
from .flow import FLOW_SIZE, FlowMethod, check_flow_method
from .producers import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ClipContext,
    InputProducer,
    ProducerOptions,
    SegmentRequest,
    producer_for,
)
from .sampling import sample_segments, segment_centres
from .spatial import EVAL_SPATIAL, draw_spatial

__all__ = ["ClipTransform", "IMAGENET_MEAN", "IMAGENET_STD", "modality_kind"]

FrameGetter = Callable[[Sequence[int]], np.ndarray]


def _no_frames(indices: Sequence[int]) -> np.ndarray:
    raise RuntimeError("frames_needed lists frames; it never decodes")


def modality_kind(key: str, spec: InputSpec) -> str:
    """The ``kind`` of the producer that makes input ``key`` (``rgb``, ``flow``, ``rgbdiff``,
    ``audio``, or a plugin's).

    Raises:
        ConfigError: no registered modality with a producer (see `producer_for`).
    """
    return producer_for(key, spec).kind


def stacked_frames(input_spec: Mapping[str, InputSpec]) -> int:
    """Raw frames one sampled frame stacks for these inputs together: 5 with flow or RGB
    difference, else 1. Segment sampling keeps every stack inside the video, so it moves the
    sampled frames of *every* input (the reference's ``num_consecutive_frames``): an RGB input
    made beside RGB difference is not the RGB input made alone."""
    stacks = [1]
    for key, spec in input_spec.items():
        producer = producer_for(key, spec)
        if producer.uses_frames:
            stacks.append(producer.stack(spec))
    return max(stacks)


def frame_counts(input_spec: Mapping[str, InputSpec]) -> list[int]:
    """The distinct T of the inputs made from frames, ascending (``[8]`` for none: audio's
    windows are then centred on the segments of an 8-frame sampling); the smallest sets the
    audio windows' centres, so audio made beside a 4-frame RGB input is not audio made alone."""
    counts = {spec.frames for k, spec in input_spec.items() if producer_for(k, spec).uses_frames}
    return sorted(counts) or [8]


def sampling_of(input_spec: Mapping[str, InputSpec]) -> tuple[int, tuple[int, ...]]:
    """What decides where each input of a clip is sampled: (`stacked_frames`,
    `frame_counts`). Inputs made together equal the same inputs made alone exactly when both
    give the same value."""
    return stacked_frames(input_spec), tuple(frame_counts(input_spec))


class ClipTransform:
    """Produce one video's inputs, exactly the shapes of ``input_spec``.

    Args:
        input_spec: modality -> [`InputSpec`][adamml.modalities.InputSpec] (``model.input_spec``).
        segments: S.
        train: random sampling and augmentation (True) or deterministic evaluation.
        independent_augment: draw crop/flip per modality (reference) instead of once per clip.
        flow_method: how flow is computed from frames (see `optical_flow`).
        flow_reduced: reduced TV-L1 settings.
        flow_size: shorter side of the frames flow is computed on; the flow is then
            scaled/cropped like the RGB frames.
        flow_on_demand: return a [`FlowRequest`][adamml.data.flowclip.FlowRequest] for ``flow``
            instead of a tensor (see `OnDemandFlow`); stored flow (``flow=`` in the call) is
            always read eagerly.
        flow_device: where ``raft_small`` computes eager flow (the CPU by default).
        rgbdiff_uint8: map RGB differences to uint8 with truncation as the reference does
            (``floor((d + 255) * 255 / 510)``); default keeps float ``(d + 255) / 510``.
        stride: temporal stride between sampled frames (4).
        sample_like: sample the frames (and centre the audio windows) as for these inputs,
            a superset of ``input_spec`` (a pre-training stage of a run samples as its model
            does; alone, RGB would sit on other frames than beside RGB difference: see
            `sampling_of`); ``None``: as for ``input_spec``.
        frame_subsets: ``{modality: frame positions}``: produce only those of a segment's T
            sampled frames (RGB and RGB difference), e.g. the frames a policy's view keeps.

    Shape:
        visual ``(S, T, C, H, W)`` (``T = len(frame_subsets[m])`` where given); audio
        ``(S, 1, 1, F, W)``.

    Example:
        >>> from adamml.modalities import InputSpec
        >>> spec = {"rgb": InputSpec((4, 3, 32, 32), "rgb"),
        ...         "audio": InputSpec((1, 1, 32, 32), "audio")}
        >>> tf = ClipTransform(spec, segments=3, train=False)
        >>> frames = lambda idx: np.zeros((len(idx), 48, 64, 3), np.uint8)
        >>> out = tf(frames, 30, 30.0, None, np.random.default_rng(0))
        >>> out["rgb"].shape, out["audio"].shape
        (torch.Size([3, 4, 3, 32, 32]), torch.Size([3, 1, 1, 32, 32]))
    """

    def __init__(
        self,
        input_spec: Mapping[str, InputSpec],
        *,
        segments: int,
        train: bool,
        independent_augment: bool = False,
        flow_method: FlowMethod = "tvl1",
        flow_reduced: bool = False,
        flow_size: int = FLOW_SIZE,
        flow_on_demand: bool = False,
        rgbdiff_uint8: bool = False,
        stride: int = 4,
        flow_device: torch.device | str = "cpu",
        frame_subsets: Mapping[str, Sequence[int]] | None = None,
        sample_like: Mapping[str, InputSpec] | None = None,
    ) -> None:
        if segments < 1:
            raise ConfigError(f"segments must be >= 1, got {segments}")
        self.input_spec = dict(input_spec)
        self.producers: dict[str, InputProducer] = {
            k: producer_for(k, spec) for k, spec in self.input_spec.items()
        }
        self.kinds = {k: p.kind for k, p in self.producers.items()}
        self.segments, self.train, self.stride = segments, train, stride
        self.independent_augment = independent_augment
        self.options = ProducerOptions(
            flow_method=check_flow_method(flow_method, "flow_method"),
            flow_reduced=flow_reduced,
            flow_size=flow_size,
            flow_on_demand=flow_on_demand,
            flow_device=torch.device(flow_device),
            rgbdiff_uint8=rgbdiff_uint8,
        )
        self.frame_subsets = {k: tuple(int(t) for t in v) for k, v in (frame_subsets or {}).items()}
        for key in self.frame_subsets:
            p = self.producers.get(key)
            if p is None or not p.uses_frames or p.on_demand:
                raise ConfigError(
                    f"frame_subsets names {key!r}; only inputs made eagerly from the sampled "
                    f"frames can be produced for some frames (kinds: {self.kinds})"
                )
        # raw frames one sampled frame stacks (5 for flow and RGB difference): sampling keeps
        # every stack inside the video; `sample_like` samples as for those inputs instead
        like = dict(sample_like) if sample_like else self.input_spec
        self.consecutive = stacked_frames(like)
        # the distinct T sampled for every clip; the first sets the audio windows
        self._frames = frame_counts(like)
        self._frames += [t for t in frame_counts(self.input_spec) if t not in self._frames]

    @property
    def needs_audio(self) -> bool:
        """Whether some input is made from the audio track (decode it)."""
        return any(p.needs_audio for p in self.producers.values())

    @property
    def flow_method(self) -> str:
        return self.options.flow_method

    @property
    def flow_on_demand(self) -> bool:
        return self.options.flow_on_demand

    def sample(
        self, num_frames: int, rng: np.random.Generator, *, segments: int | None = None
    ) -> dict[int, np.ndarray]:
        """``(S, T)`` indices for each distinct T among the modalities (same region draws);
        ``segments`` overrides S (one window of a stream is sampled as one segment)."""
        seed = int(rng.integers(2**62))
        return {
            t: sample_segments(
                num_frames,
                self.segments if segments is None else int(segments),
                t,
                train=self.train,
                rng=np.random.default_rng(seed),
                stride=self.stride,
                consecutive=self.consecutive,
            )
            for t in self._frames
        }

    def __call__(
        self,
        get_frames: FrameGetter,
        num_frames: int,
        fps: float,
        audio: np.ndarray | None,
        rng: np.random.Generator,
        *,
        flow: Callable[[Sequence[int]], np.ndarray] | None = None,
        path: str | Path | None = None,
        columns: Mapping[str, str] | None = None,
        root: str | Path | None = None,
    ) -> dict[str, Tensor | SegmentRequest]:
        """One clip's inputs.

        Args:
            get_frames: indices -> ``(n, H, W, 3)`` uint8 RGB frames, in the order asked.
            num_frames: frames in the video.
            fps: the video's frame rate (aligns audio windows to frames).
            audio: ``(n,)`` float32 mono at 24 kHz, or ``None`` (zeros spectrogram).
            rng: all random draws come from it.
            flow: optional stored flow: pair starts -> ``(n, H, W, 2)`` float pixels (offline
                extraction); otherwise flow is computed from frames.
            path: the video file, for producers that read the container (and messages).
            columns: the manifest row's other columns (side files, see `ClipContext`).
            root: the folder relative side-file paths start from.

        Returns:
            modality -> tensor (or a `SegmentRequest`, e.g. `FlowRequest`, for on-demand inputs).
        """
        num_frames = max(int(num_frames), 1)
        indices = self.sample(num_frames, rng)
        return self.produce(
            indices,
            get_frames,
            num_frames,
            fps,
            audio,
            rng,
            flow=flow,
            path=path,
            columns=columns,
            root=root,
        )

    def produce(
        self,
        indices: Mapping[int, np.ndarray],
        get_frames: FrameGetter,
        num_frames: int,
        fps: float,
        audio: np.ndarray | None,
        rng: np.random.Generator,
        *,
        flow: Callable[[Sequence[int]], np.ndarray] | None = None,
        path: str | Path | None = None,
        columns: Mapping[str, str] | None = None,
        root: str | Path | None = None,
    ) -> dict[str, Tensor | SegmentRequest]:
        """The inputs of the segments ``indices`` (from `sample`, or some of its rows: a stream
        makes one segment at a time, `adamml.data.stream_video_inputs`).

        Args:
            indices: ``{T: (S', T)}`` frame indices, as `sample` returns them.

        The other arguments (``get_frames``, ``num_frames``, ``fps``, ``audio``, ``rng``,
        ``flow``, ``path``, ``columns``, ``root``) are as in ``__call__``; ``audio`` need only
        cover the segments' windows.

        Returns:
            modality -> ``(S', ...)`` tensor (or a `SegmentRequest`).
        """
        num_frames = max(int(num_frames), 1)
        shared = draw_spatial(rng) if self.train else EVAL_SPATIAL
        params = {
            k: (draw_spatial(rng) if self.train and self.independent_augment else shared)
            for k in self.input_spec
        }
        ctx = self._context(
            indices,
            get_frames,
            num_frames,
            fps,
            audio,
            rng,
            path=Path(path) if path is not None else None,
            columns=dict(columns or {}),
            root=Path(root) if root is not None else None,
            stored_flow=flow,
        )
        own = {k: self._indices(k, indices) for k in self.input_spec}
        needed: set[int] = set()
        shorts: set[int] | None = set()
        for key, p in self.producers.items():
            frames = p.frames_needed(self.input_spec[key], own[key], ctx)
            needed.update(frames.tolist())
            if len(frames) and shorts is not None:
                sides = p.short_sides(self.input_spec[key], params[key], ctx)
                shorts = None if sides is None else shorts | sides
        ctx._decode(needed, shorts)  # one decode for every producer
        return {
            key: p.make(self.input_spec[key], own[key], params[key], ctx)
            for key, p in self.producers.items()
        }

    def frames_needed(
        self, indices: Mapping[int, np.ndarray], num_frames: int, *, on_demand: bool = True
    ) -> np.ndarray:
        """Sorted frame indices the inputs of the segments ``indices`` read; with
        ``on_demand``, also those on-demand inputs (flow) would read when computed.

        Example:
            >>> from adamml.modalities import InputSpec
            >>> tf = ClipTransform({"rgb": InputSpec((2, 3, 8, 8), "rgb")}, segments=1,
            ...                    train=False)
            >>> tf.frames_needed(tf.sample(30, np.random.default_rng(0)), 30).tolist()
            [0, 4]
        """
        num_frames = max(int(num_frames), 1)
        options = replace(self.options, flow_on_demand=False) if on_demand else self.options
        ctx = self._context(indices, _no_frames, num_frames, 1.0, None, None, options=options)
        needed: set[int] = set()
        for key, p in self.producers.items():
            own = self._indices(key, indices)
            needed.update(p.frames_needed(self.input_spec[key], own, ctx).tolist())
        return np.array(sorted(needed), dtype=np.int64)

    def deferred_frames(
        self, indices: Mapping[int, np.ndarray], num_frames: int
    ) -> dict[int | None, np.ndarray]:
        """The frames the on-demand inputs (flow with ``flow_on_demand``) of the segments
        ``indices`` read if they are computed for every segment, by the shorter side they read
        them at (``None``: full size): what a decoder may keep from the clip's one decode so
        that computing them later decodes nothing (`adamml.data.load_video_inputs`).

        Example:
            >>> from adamml.modalities import InputSpec
            >>> spec = {"flow": InputSpec((1, 4, 8, 8), "flow")}
            >>> tf = ClipTransform(spec, segments=1, train=False, flow_on_demand=True)
            >>> tf.deferred_frames(tf.sample(30, np.random.default_rng(0)), 30)
            {256: array([0, 1, 2])}
        """
        num_frames = max(int(num_frames), 1)
        if not self.options.flow_on_demand:
            return {}
        eager = replace(self.options, flow_on_demand=False)
        ctx = self._context(indices, _no_frames, num_frames, 1.0, None, None, options=eager)
        out: dict[int | None, set[int]] = {}
        for key, p in self.producers.items():
            if not p.on_demand:
                continue
            spec, own = self.input_spec[key], self._indices(key, indices)
            frames = p.frames_needed(spec, own, ctx)
            sides = p.short_sides(spec, EVAL_SPATIAL, ctx)
            short = next(iter(sides)) if sides is not None and len(sides) == 1 else None
            out.setdefault(short, set()).update(frames.tolist())
        return {k: np.array(sorted(v), dtype=np.int64) for k, v in out.items() if v}

    def _context(
        self,
        indices: Mapping[int, np.ndarray],
        get_frames: FrameGetter,
        num_frames: int,
        fps: float,
        audio: np.ndarray | None,
        rng: np.random.Generator | None,
        **fields: Any,
    ) -> ClipContext:
        first = next(iter(indices.values()))
        return ClipContext(
            num_frames=num_frames,
            fps=fps,
            segments=int(first.shape[0]),
            train=self.train,
            rng=rng if rng is not None else np.random.default_rng(0),
            get_frames=get_frames,
            centres=segment_centres(first) / fps,
            audio=audio,
            **{"options": self.options, **fields},
        )

    def _indices(self, key: str, indices: dict[int, np.ndarray]) -> np.ndarray:
        """``(S, T')`` frame indices of input ``key`` (its spec's T, or its frame subset)."""
        spec = self.input_spec[key]
        idx = indices.get(spec.frames, next(iter(indices.values())))
        if key in self.frame_subsets:
            idx = idx[:, list(self.frame_subsets[key])]
        return idx
