"""A video decoded forward once, each segment's inputs made as soon as its frames have arrived.

For online recognition (`adamml.AdaMML.stream`, ``adamml predict --stream``) the container is
opened once and read forward (video and audio packets as they are interleaved); segment ``s``
is handed over when every frame it samples has been decoded and, for audio, when the track
covers its 1.28-s window. Each segment is made by the same
[`ClipTransform`][adamml.data.ClipTransform] as [`load_video_inputs`][adamml.data.load_video_inputs]
(the same producers, frame indices and audio windows), so the segments equal the slices of
what ``load_video_inputs`` returns for the file.

Where the segments are:

- **the frame count is known** (a file whose container gives a frame count or a duration): the
  evaluation sampling of ``segments`` segments over the whole video, as ``adamml predict``;
- **unknown** (a pipe, a file still being written, a live recording) or ``segment_frames``
  given: fixed windows of ``segment_frames`` frames (default
  [`DEFAULT_SEGMENT_FRAMES`][adamml.data.stream.DEFAULT_SEGMENT_FRAMES], 64), each sampled as a
  one-segment video (its first ``T`` frames at stride 4), for as long as the stream lasts; a
  trailing window whose sampled frames never arrived is dropped (unless it is the only one,
  its missing frames then repeat the last frame).

```
container ──demux──► video frames ──► frames each pending segment samples (kept until made)
                └──► audio frames ──► 24 kHz mono (FFmpeg's resampler, as VideoReader.get_audio)
segment s ready (its frames arrived, audio covers its window) ──► ClipTransform.produce
          ──► DecodedSegment(s, {m: (1, 1, T, C, H, W)}, frames)
```
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any, NamedTuple

import av
import numpy as np
import torch

from ..errors import ConfigError
from ..modalities import InputSpec
from .audio import AUDIO_WINDOW_SECONDS
from .clip import batch_of_one, video_transform
from .decode import AUDIO_RATE, StreamInfo, _open, frame_index, stream_info
from .errors import MediaFileError, NoAudioStreamError, VideoDecodeError
from .flow import FlowMethod
from .sampling import segment_centres

__all__ = ["DEFAULT_SEGMENT_FRAMES", "DecodedSegment", "SegmentReader", "stream_video_inputs"]

DEFAULT_SEGMENT_FRAMES = 64
"""Frames per segment when the frame count is unknown (a pipe): about 2 s at 30 fps, room for
the paper's 8 frames at stride 4 with 5 stacked flow pairs (37 frames)."""


class DecodedSegment(NamedTuple):
    """One segment of a video, made as soon as its frames arrived.

    Attributes:
        index: the segment's position s (0, 1, ...).
        inputs: ``{m: (1, 1, T, C, H, W)}`` tensors (on-demand flow as an ``OnDemandFlow`` of
            that shape), ready for [`VideoStream.step`][adamml.streaming.VideoStream.step].
        frames: ``(first, last)`` frame index the segment reads.
    """

    index: int
    inputs: dict[str, Any]
    frames: tuple[int, int]


class _SegmentFrames:
    """The decoded frames of one segment, as a frame getter (for the producers and for an
    on-demand flow request computed later)."""

    def __init__(self, frames: Mapping[int, np.ndarray], name: str) -> None:
        self.frames, self.name = dict(frames), name

    def __call__(self, indices: Any) -> np.ndarray:
        try:
            return np.stack([self.frames[int(i)] for i in np.asarray(indices).reshape(-1)])
        except KeyError as e:
            raise VideoDecodeError(f"{self.name}: frame {e} was not kept for its segment") from e


class SegmentReader:
    """Read a video forward once and yield each segment's model inputs as soon as they can be
    made (see the module docstring for where the segments are).

    Args:
        source: a video file path, or a readable binary file object (a pipe,
            ``sys.stdin.buffer``) in a container PyAV can read without seeking (MPEG-TS,
            Matroska, fragmented MP4; a plain MP4 needs its index, which is at the end).
        input_spec: the model itself (on-demand flow, policy-only views as in
            `load_video_inputs`) or ``model.input_spec``.
        segments: S when the frame count is known and ``segment_frames`` is not given.
        segment_frames: fixed windows of this many frames instead (always used, with
            `DEFAULT_SEGMENT_FRAMES`, when the container does not give the frame count).
        missing_audio: ``"zeros"`` or ``"raise"`` when the model needs audio and the file has
            none.
        flow_on_demand: as in `load_video_inputs` (default: on demand for a model's flow; the
            frames flow would need are kept with the segment).
        flow_method: how flow is computed (`adamml.data.flow.FlowMethod`).
        flow_reduced: reduced TV-L1 settings (as in `load_video_inputs`).
        device: where the inputs go (default: the model's device).

    Attributes:
        info: the container's ``adamml.data.decode.StreamInfo``.
        segment_frames: the window length in frames, or ``None`` for the evaluation sampling.
        num_segments: S with the evaluation sampling, ``None`` for fixed windows.

    Raises:
        MediaFileError, VideoDecodeError, NoVideoStreamError: the source cannot be read (named);
        NoAudioStreamError: ``missing_audio="raise"`` and no audio stream;
        ConfigError: for ``segment_frames < 1`` or ``segments < 1``.

    Example:
        >>> with SegmentReader("clip.mp4", model) as reader:  # doctest: +SKIP
        ...     stream = model.stream()
        ...     for seg in reader:
        ...         print(seg.index, stream.step(seg.inputs).logits.argmax(-1))
    """

    def __init__(
        self,
        source: str | os.PathLike[str] | IO[bytes],
        input_spec: Mapping[str, InputSpec] | Any,
        *,
        segments: int = 10,
        segment_frames: int | None = None,
        missing_audio: str = "zeros",
        flow_on_demand: bool | None = None,
        flow_method: FlowMethod = "tvl1",
        flow_reduced: bool = False,
        device: torch.device | str | None = None,
    ) -> None:
        if segment_frames is not None and int(segment_frames) < 1:
            raise ConfigError(f"segment_frames must be >= 1; got {segment_frames!r}")
        if int(segments) < 1:
            raise ConfigError(f"segments must be >= 1; got {segments!r}")
        self.transform, self.views, self.device = video_transform(
            input_spec,
            segments=int(segments),
            flow_on_demand=flow_on_demand,
            flow_method=flow_method,
            flow_reduced=flow_reduced,
            device=device,
        )
        self.path = Path(source) if isinstance(source, (str, os.PathLike)) else None
        self.name = str(self.path) if self.path is not None else getattr(source, "name", "<pipe>")
        self._container = self._open(source)
        try:
            self.info: StreamInfo = stream_info(self._container, self.name)
        except BaseException:
            self._container.close()
            raise
        self._audio = self.transform.needs_audio and self.info.has_audio
        if self.transform.needs_audio and not self.info.has_audio and missing_audio == "raise":
            self._container.close()
            raise NoAudioStreamError(f"{self.name}: the file has no audio stream")
        known = self.info.frames_known and segment_frames is None
        self.segment_frames = None if known else int(segment_frames or DEFAULT_SEGMENT_FRAMES)
        self.num_segments = int(segments) if known else None
        rng = np.random.default_rng(0)  # as load_video_inputs (evaluation draws nothing)
        if self.segment_frames is None:
            self._plan = self.transform.sample(self.info.num_frames, rng)
        else:
            self._plan = self.transform.sample(self.segment_frames, rng, segments=1)

    def _open(self, source: Any) -> Any:
        if self.path is not None:
            return _open(self.path)
        try:
            return av.open(source, mode="r")
        except (av.FFmpegError, OSError, ValueError) as e:
            raise VideoDecodeError(
                f"{self.name}: not a stream FFmpeg can read without seeking ({e}); "
                "pipe a container such as MPEG-TS or Matroska"
            ) from e

    def close(self) -> None:
        """Close the container."""
        self._container.close()

    def __enter__(self) -> SegmentReader:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- the plan: which frames segment s samples ----------------------------------------------
    def indices(self, s: int) -> dict[int, np.ndarray]:
        """``{T: (1, T)}`` frame indices of segment ``s``."""
        if self.segment_frames is None:
            return {t: ix[s : s + 1] for t, ix in self._plan.items()}
        return {t: ix + s * self.segment_frames for t, ix in self._plan.items()}

    def _num_frames(self, s: int) -> int:
        """The video length the producers clamp segment ``s``'s frames to."""
        if self.segment_frames is None:
            return self.info.num_frames
        return (s + 1) * self.segment_frames

    def _audio_end(self, indices: dict[int, np.ndarray]) -> int:
        """Samples the audio must reach before segment ``indices``'s window is final."""
        length = int(round(AUDIO_RATE * AUDIO_WINDOW_SECONDS))
        centre = float(segment_centres(next(iter(indices.values())))[0]) / self.info.fps
        return max(int(round(centre * AUDIO_RATE)) - length // 2, 0) + length

    # -- decoding ------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[DecodedSegment]:
        try:
            yield from self._segments()
        except av.FFmpegError as e:
            hint = (
                ""
                if self.path is not None
                else "; a pipe must carry a container that can be read without seeking "
                "(MPEG-TS, Matroska, fragmented MP4), not a plain MP4"
            )
            raise VideoDecodeError(f"{self.name}: decoding failed ({e}){hint}") from e

    def _segments(self) -> Iterator[DecodedSegment]:
        c = self._container
        video = c.streams.video[0]
        video.thread_type = "AUTO"
        streams = [video] + ([c.streams.audio[0]] if self._audio else [])
        resampler = av.AudioResampler(format="flt", layout="mono", rate=AUDIO_RATE)
        self._chunks: list[np.ndarray] = []
        self._samples = 0
        self._audio_done = not self._audio
        self._frames: dict[int, np.ndarray] = {}  # target index -> RGB frame
        self._users: dict[int, int] = {}  # target index -> pending segments that read it
        self._pending: list[tuple[int, dict[int, np.ndarray], np.ndarray]] = []
        self._targets: list[int] = []  # planned, not yet decoded, ascending
        self._planned = 0
        self._made = 0
        self._last = -1  # index of the newest decoded frame
        prev: Any = None
        for packet in c.demux(streams):
            if packet.stream.type == "video":
                for frame in packet.decode():
                    self._last = frame_index(
                        frame, self._last, self.info.start_pts, self.info.time_base, self.info.fps
                    )
                    self._plan_until(self._last)
                    self._assign(self._last, prev if prev is not None else frame)
                    prev = frame
            else:
                for frame in packet.decode():
                    frame.pts = None  # follow sample counts, as VideoReader.get_audio
                    self._add_audio(resampler.resample(frame))
            yield from self._ready(final=False)
        if prev is None:
            raise VideoDecodeError(f"{self.name}: no video frame could be decoded")
        if self._audio:
            self._add_audio(resampler.resample(None))
        self._audio_done = True
        last_rgb = prev.to_ndarray(format="rgb24")
        complete = self._pending[:]
        for t in self._targets:  # past the end: the last frame, as VideoReader
            self._frames[t] = last_rgb
        self._targets = []
        if self.segment_frames is not None:
            # a trailing window whose sampled frames never arrived is dropped
            complete = [p for p in complete if self._last_read(p[1], p[2]) <= self._last]
            if not complete and self._made == 0 and self._pending:
                complete = self._pending[:1]
        self._pending = complete
        yield from self._ready(final=True)

    def _plan_until(self, index: int) -> None:
        """Plan every segment that may sample a frame at or before ``index`` (all of them with
        the evaluation sampling)."""
        while self.num_segments is None or self._planned < self.num_segments:
            s = self._planned
            if self.segment_frames is not None and s * self.segment_frames > index:
                return
            indices = self.indices(s)
            needed = self.transform.frames_needed(indices, self._num_frames(s))
            self._pending.append((s, indices, needed))
            for t in needed.tolist():
                self._users[t] = self._users.get(t, 0) + 1
            fresh = {t for t in needed.tolist() if t not in self._frames}
            self._targets = sorted(set(self._targets) | fresh)
            self._planned += 1

    @staticmethod
    def _last_read(indices: dict[int, np.ndarray], needed: np.ndarray) -> int:
        return int(needed[-1]) if needed.size else int(next(iter(indices.values())).max())

    def _assign(self, index: int, prev: Any) -> None:
        """Targets before ``index`` get ``prev``, the last frame on screen at them."""
        cut = 0
        while cut < len(self._targets) and self._targets[cut] < index:
            cut += 1
        if cut:
            rgb = prev.to_ndarray(format="rgb24")
            for t in self._targets[:cut]:
                self._frames[t] = rgb
            self._targets = self._targets[cut:]

    def _add_audio(self, frames: Any) -> None:
        for f in frames:
            chunk = f.to_ndarray().reshape(-1).astype(np.float32, copy=False)
            self._chunks.append(chunk)
            self._samples += chunk.size

    def _audio_array(self) -> np.ndarray | None:
        if not self._audio:
            return None
        if len(self._chunks) != 1:
            merged = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.float32)
            self._chunks = [merged]
        return self._chunks[0]

    def _ready(self, *, final: bool) -> Iterator[DecodedSegment]:
        """Make the pending segments, in order, whose frames and audio have arrived."""
        while self._pending:
            s, indices, needed = self._pending[0]
            if not final:
                # a frame is final once a later one has been decoded (it is on screen until then)
                if needed.size and int(needed[-1]) >= self._last:
                    return
                if not self._audio_done and self._samples < self._audio_end(indices):
                    return
            self._pending.pop(0)
            yield self._make(s, indices, needed)

    def _make(self, s: int, indices: dict[int, np.ndarray], needed: np.ndarray) -> DecodedSegment:
        frames = _SegmentFrames({int(t): self._frames[int(t)] for t in needed}, self.name)
        for t in needed.tolist():  # forget frames no later segment reads
            self._users[t] -= 1
            if self._users[t] == 0:
                del self._users[t]
                self._frames.pop(t, None)
        inputs = self.transform.produce(
            indices,
            frames,
            self._num_frames(s),
            self.info.fps,
            self._audio_array(),
            np.random.default_rng(0),
            path=self.path,
        )
        self._made += 1
        first = int(needed[0]) if needed.size else int(next(iter(indices.values())).min())
        last = self._last_read(indices, needed)
        return DecodedSegment(s, batch_of_one(inputs, self.views, self.device), (first, last))


def stream_video_inputs(
    source: str | os.PathLike[str] | IO[bytes],
    input_spec: Mapping[str, InputSpec] | Any,
    **options: Any,
) -> Iterator[DecodedSegment]:
    """Yield ``source``'s segments as they are decoded: ``SegmentReader(source, input_spec,
    **options)`` iterated and closed (see [`SegmentReader`][adamml.data.stream.SegmentReader]).

    Raises:
        MediaFileError: for a folder (frame folders are read whole by `load_video_inputs`).

    Example:
        >>> stream = model.eval().stream()  # doctest: +SKIP
        >>> for seg in stream_video_inputs("clip.mp4", model):  # doctest: +SKIP
        ...     step = stream.step(seg.inputs)
    """
    if isinstance(source, (str, os.PathLike)) and Path(source).is_dir():
        raise MediaFileError(f"{source}: streaming reads a video file or a pipe, not a folder")
    with SegmentReader(source, input_spec, **options) as reader:
        yield from reader
