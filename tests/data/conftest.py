"""Fixtures for the data tests: a synthetic mp4 factory built with PyAV."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

_LAYOUTS = {1: "mono", 2: "stereo", 6: "5.1"}


def make_video(
    path: Path,
    *,
    size: tuple[int, int] = (64, 48),
    fps: int = 30,
    num_frames: int = 30,
    gop: int | None = 10,
    audio_channels: int = 2,
    audio_rate: int = 44100,
    audio: bool = True,
    video: bool = True,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    frame_times: list[float] | None = None,
    tone: float = 440.0,
) -> Path:
    """Write a small video: a moving gradient whose frame number is in the first row.

    ``frame_times`` (seconds) makes a variable-frame-rate file. Each frame's top-left 8x8
    block brightness encodes the frame number (``8 * i % 256``) so tests can read it back.
    """
    w, h = size
    with av.open(str(path), "w") as c:
        vs = None
        if video:
            vs = c.add_stream(codec, rate=fps)
            vs.width, vs.height, vs.pix_fmt = w, h, pix_fmt
            if gop is not None:
                vs.codec_context.gop_size = gop
            if codec == "libx264":
                vs.options = {"preset": "ultrafast", "crf": "18"}
                if gop is not None:
                    vs.options = {
                        **vs.options,
                        "keyint": str(gop),
                        "min-keyint": str(gop),
                        "scenecut": "0",
                    }
            if frame_times is not None:
                vs.codec_context.time_base = Fraction(1, 1000)
        aus = None
        if audio:
            aus = c.add_stream("aac", rate=audio_rate, layout=_LAYOUTS[audio_channels])
        if vs is not None:
            yy, xx = np.mgrid[0:h, 0:w]
            for i in range(num_frames):
                img = np.empty((h, w, 3), np.uint8)
                img[..., 0] = (xx * 4 + i * 3) % 256
                img[..., 1] = (yy * 4 + i * 5) % 256
                img[..., 2] = ((xx + yy) * 2 + i * 7) % 256
                img[:8, :8] = (8 * i) % 256
                frame = av.VideoFrame.from_ndarray(img, format="rgb24")
                if frame_times is not None:
                    frame.pts = int(round(frame_times[i] * 1000))
                    frame.time_base = Fraction(1, 1000)
                for p in vs.encode(frame):
                    c.mux(p)
            for p in vs.encode():
                c.mux(p)
        if aus is not None:
            seconds = (frame_times[-1] + 1 / fps) if frame_times else num_frames / fps
            n = max(1, int(seconds * audio_rate))
            t = np.arange(n) / audio_rate
            wave = (0.5 * np.sin(2 * np.pi * tone * t)).astype(np.float32)
            data = np.repeat(wave[None], audio_channels, axis=0)
            hop = 1024
            for k in range(0, n, hop):
                chunk = np.ascontiguousarray(data[:, k : k + hop])
                af = av.AudioFrame.from_ndarray(
                    chunk, format="fltp", layout=_LAYOUTS[audio_channels]
                )
                af.sample_rate = audio_rate
                af.pts = k
                for p in aus.encode(af):
                    c.mux(p)
            for p in aus.encode():
                c.mux(p)
    return path


@pytest.fixture
def make_mp4(tmp_path: Path) -> Callable[..., Path]:
    """Factory: ``make_mp4(name="v.mp4", **make_video kwargs) -> Path`` in ``tmp_path``."""

    def factory(name: str = "v.mp4", **kwargs: object) -> Path:
        return make_video(tmp_path / name, **kwargs)  # type: ignore[arg-type]

    return factory
