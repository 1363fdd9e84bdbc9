"""Decode benchmark: a 10-segment evaluation clip (RGB + audio) from an mp4 file.

Compares the VideoReader's forward-decode strategy (sort the targets, seek once, decode forward,
convert only the wanted frames) with one seek per frame, on a short-GOP and a long-GOP file
generated in a temporary folder. Run: ``.venv/bin/python benchmarks/decode.py``.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from functools import partial
from pathlib import Path

import av
import numpy as np

from adamml.data import ClipTransform, VideoReader
from adamml.modalities import AUDIO, RGB


def make_clip(
    path: Path, *, gop: int, seconds: int = 10, fps: int = 30, size: tuple[int, int] = (340, 256)
) -> Path:
    """A 10 s H.264 clip (moving texture) with a 44.1 kHz stereo AAC tone."""
    w, h = size
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 255, (h, w * 2, 3), dtype=np.uint8)
    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.options = {
            "preset": "veryfast",
            "crf": "23",
            "keyint": str(gop),
            "min-keyint": str(gop),
            "scenecut": "0",
        }
        aus = c.add_stream("aac", rate=44100, layout="stereo")
        for i in range(seconds * fps):
            frame = av.VideoFrame.from_ndarray(
                np.ascontiguousarray(texture[:, i : i + w]), format="rgb24"
            )
            for p in vs.encode(frame):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
        t = np.arange(seconds * 44100) / 44100
        wave = np.repeat((0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None], 2, 0)
        for k in range(0, wave.shape[1], 1024):
            af = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(wave[:, k : k + 1024]), format="fltp", layout="stereo"
            )
            af.sample_rate, af.pts = 44100, k
            for p in aus.encode(af):
                c.mux(p)
        for p in aus.encode():
            c.mux(p)
    return path


def clip_ms(path: Path, strategy: str, repeats: int = 5) -> float:
    """Median ms to produce a 10-segment eval clip: open, decode frames + audio, transform."""
    tf = ClipTransform({"rgb": RGB.input_spec, "audio": AUDIO.input_spec}, segments=10, train=False)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        r = VideoReader(path)
        out = tf(
            partial(r.get_frames, strategy=strategy),
            r.num_frames,
            r.fps,
            r.get_audio(),
            np.random.default_rng(0),
        )
        times.append((time.perf_counter() - t0) * 1000)
    assert out["rgb"].shape == (10, 8, 3, 224, 224) and out["audio"].shape == (10, 1, 1, 256, 256)
    return statistics.median(times)


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        files = {
            "short GOP (keyframe every 30)": make_clip(Path(d) / "short.mp4", gop=30),
            "long GOP (one keyframe)": make_clip(Path(d) / "long.mp4", gop=10000),
        }
        print(
            "10-segment eval clip (80 RGB frames 8x224x224 + 10 spectrograms), "
            "340x256 30 fps 10 s H.264, median of 5, ms"
        )
        print("| file | forward decode | one seek per frame | speed-up |")
        print("| --- | --- | --- | --- |")
        for name, path in files.items():
            fwd, per = clip_ms(path, "forward"), clip_ms(path, "per_frame")
            print(f"| {name} | {fwd:.0f} | {per:.0f} | {per / fwd:.1f}x |")


if __name__ == "__main__":
    main()
