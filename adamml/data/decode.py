"""Video and audio decoding with PyAV: "sort the targets, seek once, decode forward".

AdaMML appendix B decodes every video with FFmpeg; the reference extracts all frames to JPEG
first (reference §8). Here frames are read straight from the video file on demand. See
``spec/dependency-notes.md`` §1 for the measured speeds behind the strategy.

Frame indices are *time based*: index ``i`` is the frame on screen at time ``i / fps`` after the
stream's start (with 0.1 frame of slack for timestamp rounding), ``fps`` being the stream's
average rate. For constant-frame-rate files this is exactly the decode order. For
variable-frame-rate files a frame covers every index from its own time up to the next frame's,
so some indices repeat a frame and, where the rate locally exceeds the average, frames that fall
within one index collapse to the later one; this keeps video indices aligned with audio time.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import av
import numpy as np

from .errors import MediaFileError, NoAudioStreamError, NoVideoStreamError, VideoDecodeError
from .spatial import resize_frame_short

__all__ = ["VideoReader", "StreamInfo", "stream_info", "frame_index", "AUDIO_RATE"]

AUDIO_RATE = 24000
"""The paper's audio sample rate (AdaMML appendix B: mono, 24 kHz)."""


def _open(path: Path) -> Any:
    """Open ``path`` with PyAV, turning every failure into a typed error naming the file."""
    if not path.exists():
        raise MediaFileError(f"{path}: no such file")
    if path.is_dir():
        raise MediaFileError(f"{path}: is a folder, not a video file")
    if path.stat().st_size == 0:
        raise MediaFileError(f"{path}: the file is empty (0 bytes)")
    try:
        return av.open(str(path))
    except PermissionError as e:
        raise MediaFileError(f"{path}: cannot be read ({e})") from e
    except (av.FFmpegError, OSError, UnicodeDecodeError, ValueError) as e:
        raise VideoDecodeError(f"{path}: not a media file FFmpeg can read ({e})") from e


@dataclass(frozen=True)
class StreamInfo:
    """What a container says about its first video stream (and whether it has audio).

    Attributes:
        fps: average frame rate.
        time_base: seconds per timestamp unit.
        start_pts: the stream's first timestamp.
        duration: seconds (0.0 when the container does not say).
        num_frames: frames (from the container, else duration x fps; at least 1).
        frames_known: whether the container gave a frame count or a duration (a pipe or a live
            recording often gives neither).
        width, height: frame size in pixels.
        has_audio, audio_rate, audio_channels: the first audio stream.
    """

    fps: float
    time_base: float
    start_pts: int
    duration: float
    num_frames: int
    frames_known: bool
    width: int
    height: int
    has_audio: bool
    audio_rate: int
    audio_channels: int


def stream_info(container: Any, name: Any) -> StreamInfo:
    """The [`StreamInfo`][adamml.data.decode.StreamInfo] of an open PyAV container.

    Raises:
        NoVideoStreamError: the container has no video stream.
        VideoDecodeError: its video stream has no usable frame rate.
    """
    c = container
    if not c.streams.video:
        raise NoVideoStreamError(f"{name}: the file has no video stream")
    s = c.streams.video[0]
    rate = s.average_rate or s.guessed_rate or s.base_rate
    if not rate or float(rate) <= 0:
        raise VideoDecodeError(f"{name}: the video stream has no frame rate")
    fps = float(rate)
    if s.duration:
        duration = float(s.duration * s.time_base)
    elif c.duration:
        duration = float(c.duration) / av.time_base
    else:
        duration = float(s.frames) / fps
    has_audio = bool(c.streams.audio)
    return StreamInfo(
        fps=fps,
        time_base=float(s.time_base) if s.time_base else 1.0 / fps,
        start_pts=int(s.start_time or 0),
        duration=duration,
        num_frames=int(s.frames) or max(1, int(round(duration * fps))),
        frames_known=bool(s.frames) or duration > 0,
        width=int(s.codec_context.width),
        height=int(s.codec_context.height),
        has_audio=has_audio,
        audio_rate=int(c.streams.audio[0].rate or 0) if has_audio else 0,
        audio_channels=c.streams.audio[0].codec_context.channels if has_audio else 0,
    )


def frame_index(frame: Any, previous: int, start_pts: int, time_base: float, fps: float) -> int:
    """The time-based index of a decoded frame (see the module docstring): the first index at
    which it is on screen; ``previous + 1`` for a frame without a timestamp."""
    if frame.pts is None:
        return previous + 1
    # 0.1 frame of slack absorbs timestamp rounding, so constant-rate files give 0, 1, 2, ...
    return int(np.ceil((frame.pts - start_pts) * time_base * fps - 0.1))


def takes_short(get_frames: Callable[..., np.ndarray]) -> bool:
    """Whether a frame getter resizes as it decodes (a ``short`` keyword, as
    `VideoReader.get_frames`), so that callers need not hold the full-size frames."""
    try:
        return "short" in inspect.signature(get_frames).parameters
    except (TypeError, ValueError):
        return False


def _rgb24(frame: Any) -> np.ndarray:
    return frame.to_ndarray(format="rgb24")


def _converter(short: int | None) -> Callable[[Any], np.ndarray]:
    """Decoded frame -> RGB array, resized as `resize_short` would when ``short`` is given."""
    if short is None:
        return _rgb24
    return lambda frame: resize_frame_short(_rgb24(frame), short)


class VideoReader:
    """Random access to the frames and the audio track of one video file.

    The reader keeps only metadata; each call opens the file, so a reader is cheap to pickle
    into DataLoader workers.

    Args:
        path: a video file (any container/codec FFmpeg reads).

    Attributes:
        path: the file.
        fps: average frame rate of the video stream.
        num_frames: frames in the video stream (from the container, else duration x fps).
        duration: seconds.
        width, height: frame size in pixels.
        has_audio: whether the file has an audio stream.

    Raises:
        MediaFileError: missing or empty file.
        VideoDecodeError: not a media file, or no usable frame rate.
        NoVideoStreamError: the file has no video stream (e.g. audio only).

    Example:
        >>> r = VideoReader("clip.mp4")  # doctest: +SKIP
        >>> r.get_frames([0, 10, 10]).shape  # doctest: +SKIP
        (3, 240, 320, 3)
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        with _open(self.path) as c:
            info = stream_info(c, self.path)
        self.fps, self.duration, self.num_frames = info.fps, info.duration, info.num_frames
        self._time_base, self._start_pts = info.time_base, info.start_pts
        self.width, self.height = info.width, info.height
        self.has_audio = info.has_audio
        self.audio_rate, self.audio_channels = info.audio_rate, info.audio_channels

    def __repr__(self) -> str:
        return (
            f"VideoReader('{self.path}', {self.width}x{self.height}, fps={self.fps:.3f}, "
            f"frames={self.num_frames}, audio={self.has_audio})"
        )

    def _index(self, frame: Any, previous: int) -> int:
        return frame_index(frame, previous, self._start_pts, self._time_base, self.fps)

    def get_frames(
        self,
        indices: Sequence[int] | np.ndarray,
        *,
        strategy: Literal["forward", "per_frame"] = "forward",
        short: int | None = None,
    ) -> np.ndarray:
        """RGB frames at ``indices``, in the order asked (duplicates allowed).

        ``"forward"`` seeks once to the keyframe before the smallest index, decodes forward and
        converts to RGB only the wanted frames. ``"per_frame"`` seeks once per distinct index
        (slow on long GOPs; kept for benchmarks). Indices past the last frame give the last frame.

        Args:
            indices: frame indices, ``>= 0``.
            strategy: ``"forward"`` (default) or ``"per_frame"``.
            short: resize each frame as it is decoded so that its shorter side is ``short``
                (as ``resize_short`` does; the full-size frames are never kept, which for 320
                frames of a 720p video is 0.9 GB less memory to fill).

        Returns:
            ``(n, H, W, 3)`` uint8 (``H, W`` resized with ``short``).

        Raises:
            ValueError: a negative index.
            VideoDecodeError: the stream cannot be decoded (e.g. truncated file).
        """
        return self.get_frames_at({short: indices}, strategy=strategy)[short]

    def get_frames_at(
        self,
        requests: Mapping[int | None, Sequence[int] | np.ndarray],
        *,
        strategy: Literal["forward", "per_frame"] = "forward",
    ) -> dict[int | None, np.ndarray]:
        """Frames at several shorter sides from one decode: ``{short: indices}`` ->
        ``{short: frames}`` (``None``: full size), each as `get_frames` returns them.

        A frame both sides ask for is decoded once and converted once per side; e.g. the RGB
        frames a clip's inputs read now and the frames its on-demand flow may read later
        (`load_video_inputs`).

        Raises:
            ValueError: a negative index.
            VideoDecodeError: the stream cannot be decoded (e.g. truncated file).
        """
        wanted = {k: np.asarray(v, dtype=np.int64).reshape(-1) for k, v in requests.items()}
        for ix in wanted.values():
            if ix.size and ix.min() < 0:
                raise ValueError(f"{self.path}: frame indices must be >= 0, got {int(ix.min())}")
        # target -> {short: positions in that short's result}
        positions: dict[int, dict[int | None, list[int]]] = {}
        for short, ix in wanted.items():
            for i, t in enumerate(ix.tolist()):
                positions.setdefault(t, {}).setdefault(short, []).append(i)
        out: dict[int | None, np.ndarray] = {}
        converters = {short: _converter(short) for short in wanted}
        last: list[Any] = [None, {}]  # the frame last put, and its conversions per side

        def put(target: int, frame: Any) -> None:
            # each frame goes straight into the results: the decoded frames are never held twice
            # (for 320 frames of a 720p video that was 0.9 GB more, and seconds on a VM)
            if frame is not last[0]:
                last[0], last[1] = frame, {}
            for short, pos in positions[target].items():
                rgb = last[1].get(short)
                if rgb is None:
                    rgb = last[1][short] = converters[short](frame)
                if short not in out:
                    out[short] = np.empty((len(wanted[short]), *rgb.shape), rgb.dtype)
                out[short][pos] = rgb

        targets = sorted(positions)
        try:
            if not targets:
                pass
            elif strategy == "forward":
                self._decode_forward(targets, put, seek=targets[0] > 0)
            elif strategy == "per_frame":
                for t in targets:
                    self._decode_forward([t], put, seek=t > 0)
            else:
                raise ValueError(f"strategy must be 'forward' or 'per_frame', got {strategy!r}")
        except av.FFmpegError as e:
            raise VideoDecodeError(f"{self.path}: decoding frames failed ({e})") from e
        empty = np.zeros((0, self.height, self.width, 3), np.uint8)
        return {short: out.get(short, empty) for short in wanted}

    def _decode_forward(
        self, targets: list[int], put: Callable[[int, Any], None], *, seek: bool
    ) -> None:
        """Decode from one seek point and ``put(target, frame)`` each target, the frame being
        the last one with index <= target."""
        with _open(self.path) as c:
            s = c.streams.video[0]
            s.thread_type = "AUTO"
            if seek:
                pts = self._start_pts + int(targets[0] / self.fps / self._time_base)
                c.seek(pts, stream=s, backward=True, any_frame=False)
            ti, idx = 0, -1
            prev: Any = None
            for frame in c.decode(s):
                idx = self._index(frame, idx)
                if prev is None and idx > targets[0] and seek:
                    # The seek landed after the first target (odd index): decode from the start.
                    return self._decode_forward(targets, put, seek=False)
                while ti < len(targets) and targets[ti] < idx:
                    put(targets[ti], prev or frame)
                    ti += 1
                if ti == len(targets):
                    break
                prev = frame
            if prev is None:
                raise VideoDecodeError(f"{self.path}: no video frame could be decoded")
            for t in targets[ti:]:  # past the end of the stream: repeat the last frame
                put(t, prev)
        return None

    def read_all(self, *, short: int | None = None) -> np.ndarray:
        """Every frame in decode order, ``(N, H, W, 3)`` uint8 (for tests and extractors);
        with ``short``, each resized as it is decoded, as in `get_frames`."""
        frames: list[np.ndarray] = []
        rgb24 = _converter(short)
        try:
            with _open(self.path) as c:
                s = c.streams.video[0]
                s.thread_type = "AUTO"
                frames = [rgb24(f) for f in c.decode(s)]
        except av.FFmpegError as e:
            raise VideoDecodeError(f"{self.path}: decoding frames failed ({e})") from e
        if not frames:
            raise VideoDecodeError(f"{self.path}: no video frame could be decoded")
        return np.stack(frames)

    def get_audio(self, sample_rate: int = AUDIO_RATE) -> np.ndarray:
        """The audio track, downmixed to mono and resampled by FFmpeg's resampler.

        This is what the reference's ``ffmpeg -ac 1 -ar 24000`` extraction produces (appendix B;
        FFmpeg's stereo downmix is (L+R)/sqrt(2), dependency notes §1).

        Args:
            sample_rate: output rate in Hz.

        Returns:
            ``(n,)`` float32 samples.

        Raises:
            NoAudioStreamError: the file has no audio stream.
            VideoDecodeError: the audio cannot be decoded.
        """
        chunks: list[np.ndarray] = []
        try:
            with _open(self.path) as c:
                if not c.streams.audio:
                    raise NoAudioStreamError(f"{self.path}: the file has no audio stream")
                resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
                for frame in c.decode(c.streams.audio[0]):
                    frame.pts = None  # let the resampler follow sample counts, not timestamps
                    chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
                chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(None))
        except av.FFmpegError as e:
            raise VideoDecodeError(f"{self.path}: decoding audio failed ({e})") from e
        if not chunks:
            return np.zeros(0, np.float32)
        return np.concatenate(chunks).astype(np.float32, copy=False)
