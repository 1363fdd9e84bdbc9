"""Write SyntheticAV to disk as real mp4 files with manifests, like any downloaded dataset."""

from __future__ import annotations

import csv
import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from ...errors import ConfigError
from .config import CATEGORY_NAMES
from .dataset import SyntheticAV, SyntheticVideo

__all__ = ["write_synthetic_av", "write_video"]


def write_video(
    path: str | Path, video: SyntheticVideo, *, crf: int = 18, audio_bitrate: int = 128_000
) -> Path:
    """Encode one video as H.264 (yuv420p) with a mono AAC track at 24 kHz; the same video
    gives the same file, whatever was written before it.

    Args:
        path: the ``.mp4`` to write.
        video: frames and audio.
        crf: x264 quality (lower is closer to the in-memory frames).
        audio_bitrate: AAC bits per second (high, so the tones and noise keep their band).

    Returns:
        ``path``.
    """
    path = Path(path)
    fps = Fraction(video.fps).limit_denominator(1000)
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height = video.frames.shape[2], video.frames.shape[1]
        vs.pix_fmt = "yuv420p"
        # x264's macroblock-tree rate control made a file depend on what the process had
        # encoded before (the same frames written twice decoded up to 25 levels apart); with
        # it off the same video is the same file
        vs.options = {"crf": str(crf), "preset": "veryfast", "g": "16", "x264-params": "mbtree=0"}
        aud = out.add_stream("aac", rate=video.sample_rate, layout="mono")
        aud.bit_rate = audio_bitrate
        for frame in video.frames:
            out.mux(vs.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(vs.encode(None))
        step = 1024
        for a in range(0, video.audio.size, step):
            chunk = video.audio[a : a + step][None].astype(np.float32)
            f = av.AudioFrame.from_ndarray(chunk, format="flt", layout="mono")
            f.sample_rate, f.pts = video.sample_rate, a
            out.mux(aud.encode(f))
        out.mux(aud.encode(None))
    return path


def write_synthetic_av(
    out_dir: str | Path,
    num_videos: int,
    *,
    num_val: int | None = None,
    num_test: int = 0,
    num_classes: int = 6,
    seed: int = 0,
    crf: int = 18,
    **config: Any,
) -> Path:
    """Write train and val (and test) splits of SyntheticAV as mp4 files, manifests and ground
    truth.

    Layout::

        out_dir/classes.txt            one class name per line (label order)
        out_dir/train.csv, val.csv     header ``path,label``; paths relative to out_dir
                                       (test.csv too with ``num_test``)
        out_dir/videos/{train,val,test}/00000.mp4
        out_dir/evidence.json          per video: split, path, label, per-segment categories,
                                       segment length in seconds

    Args:
        out_dir: folder (created).
        num_videos: training videos.
        num_val: validation videos (default ``max(1, num_videos // 4)``).
        num_test: test videos (0: no test split).
        num_classes: K.
        seed: the same seed writes the same videos as ``SyntheticAV(..., seed=seed)``.
        crf: x264 quality.
        **config: `SyntheticConfig` fields.

    Returns:
        The path of ``train.csv``.

    Example:
        >>> manifest = write_synthetic_av("/tmp/syn", 8, seed=0)  # doctest: +SKIP
    """
    if num_videos < 1:
        raise ConfigError(f"write_synthetic_av needs num_videos >= 1; got {num_videos}")
    out = Path(out_dir)
    num_val = max(1, num_videos // 4) if num_val is None else int(num_val)
    records = []
    splits = [("train", num_videos), ("val", num_val)] + ([("test", num_test)] if num_test else [])
    for split, n in splits:
        ds = SyntheticAV(n, num_classes=num_classes, seed=seed, split=split, **config)
        folder = out / "videos" / split
        folder.mkdir(parents=True, exist_ok=True)
        rows = []
        for i in range(n):
            video = ds.video(i)
            rel = f"videos/{split}/{i:05d}.mp4"
            write_video(out / rel, video, crf=crf)
            rows.append((rel, video.class_name))
            records.append(
                {
                    "split": split,
                    "index": i,
                    "path": rel,
                    "label": video.class_name,
                    "categories": [CATEGORY_NAMES[c] for c in video.categories],
                    "segment_seconds": ds.config.segment_seconds,
                }
            )
        with open(out / f"{split}.csv", "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(("path", "label"))
            writer.writerows(rows)
    (out / "classes.txt").write_text("\n".join(ds.classes) + "\n")
    meta = {
        "seed": seed,
        "num_classes": num_classes,
        "config": {k: v for k, v in vars(ds.config).items()},
        "videos": records,
    }
    (out / "evidence.json").write_text(json.dumps(meta, indent=1))
    return out / "train.csv"
