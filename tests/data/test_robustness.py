"""Bad inputs: each either works (documented) or raises a typed error naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from adamml.data import (
    DataError,
    MediaFileError,
    NoAudioStreamError,
    NoVideoStreamError,
    VideoDecodeError,
    VideoReader,
)
from adamml.errors import AdamMLError


def _raises(path: Path, error: type[DataError]) -> None:
    with pytest.raises(error) as info:
        VideoReader(path).get_frames([0])
    assert str(path) in str(info.value) and isinstance(info.value, AdamMLError)


def test_missing_and_zero_byte(tmp_path: Path) -> None:
    _raises(tmp_path / "nope.mp4", MediaFileError)
    empty = tmp_path / "empty.mp4"
    empty.touch()
    _raises(empty, MediaFileError)


def test_text_file(tmp_path: Path) -> None:
    p = tmp_path / "notes.mp4"
    p.write_text("this is not a video\n" * 20)
    _raises(p, VideoDecodeError)


def test_truncated_file(make_mp4) -> None:
    p = make_mp4(num_frames=60)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    _raises(p, VideoDecodeError)


def test_audio_only_file(make_mp4) -> None:
    _raises(make_mp4("sound.m4a", video=False), NoVideoStreamError)


def test_video_without_audio(make_mp4) -> None:
    r = VideoReader(make_mp4(audio=False))
    assert not r.has_audio and r.get_frames([0, 1]).shape == (2, 48, 64, 3)
    with pytest.raises(NoAudioStreamError, match="no audio stream"):
        r.get_audio()


def test_one_frame_video(make_mp4) -> None:
    r = VideoReader(make_mp4(num_frames=1))
    assert r.num_frames == 1
    assert r.get_frames([0, 5, 40]).shape == (3, 48, 64, 3)  # clamped to the only frame


def test_variable_frame_rate(make_mp4) -> None:
    """Indices are time based (index i = frame on screen at i / average fps)."""
    times = [0.0, 0.033, 0.2, 0.233, 0.266, 0.6, 0.633, 0.666, 0.7, 0.733]
    r = VideoReader(make_mp4(frame_times=times, num_frames=len(times)))
    full = r.read_all()
    assert len(full) == 10 and r.fps == pytest.approx(10 / (0.733 + 1 / 30), rel=0.1)
    got = r.get_frames(list(range(r.num_frames)))
    assert got.shape == (r.num_frames, 48, 64, 3)
    # every returned frame is one of the decoded frames, in time order
    seq = [int(np.argmin(np.abs(full.astype(int) - g).sum((1, 2, 3)))) for g in got]
    assert seq == sorted(seq) and seq[0] == 0


def test_odd_frame_size(make_mp4) -> None:
    r = VideoReader(make_mp4(size=(171, 97), pix_fmt="yuv444p"))
    assert (r.width, r.height) == (171, 97)
    np.testing.assert_array_equal(r.get_frames([3, 7]), r.read_all()[[3, 7]])
