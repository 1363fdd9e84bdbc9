"""VideoReader: exact frames by index, audio downmix/resampling, metadata."""

from __future__ import annotations

import numpy as np
import pytest

from adamml.data.decode import VideoReader


@pytest.mark.parametrize("gop", [5, 300])  # short GOP and a single keyframe
def test_frames_match_sequential_decode(make_mp4, gop: int) -> None:
    reader = VideoReader(make_mp4(num_frames=60, gop=gop))
    full = reader.read_all()
    assert reader.num_frames == len(full) == 60
    idx = [59, 3, 3, 17, 0, 42, 41, 58]
    np.testing.assert_array_equal(reader.get_frames(idx), full[idx])
    np.testing.assert_array_equal(reader.get_frames(idx, strategy="per_frame"), full[idx])


def test_past_the_end_repeats_last_frame(make_mp4) -> None:
    reader = VideoReader(make_mp4(num_frames=10))
    full = reader.read_all()
    np.testing.assert_array_equal(reader.get_frames([12, 9]), full[[9, 9]])
    with pytest.raises(ValueError, match="indices must be >= 0"):
        reader.get_frames([-1])


@pytest.mark.parametrize("gop", [5, 300])
def test_frames_at_several_sides_come_from_one_decode(make_mp4, monkeypatch, gop: int) -> None:
    from adamml.data import decode
    from adamml.data.spatial import resize_short

    reader = VideoReader(make_mp4(num_frames=40, size=(96, 64), gop=gop))
    full = reader.read_all()
    opened: list[str] = []
    real_open = decode._open
    monkeypatch.setattr(decode, "_open", lambda p: opened.append(str(p)) or real_open(p))
    asks = {None: [39, 2, 2], 32: [5, 2, 44], 48: np.zeros(0, np.int64)}
    got = reader.get_frames_at(asks)
    assert len(opened) == 1  # one pass over the file for every side
    np.testing.assert_array_equal(got[None], full[[39, 2, 2]])
    np.testing.assert_array_equal(got[32], resize_short(full[[5, 2, 39]], 32))
    assert got[48].shape == (0, 64, 96, 3)
    with pytest.raises(ValueError, match="indices must be >= 0"):
        reader.get_frames_at({32: [3, -2]})


def test_metadata(make_mp4) -> None:
    r = VideoReader(
        make_mp4(size=(80, 60), fps=25, num_frames=50, audio_channels=1, audio_rate=8000)
    )
    assert (r.width, r.height, r.fps, r.num_frames) == (80, 60, 25.0, 50)
    assert r.duration == pytest.approx(2.0, abs=0.05) and r.has_audio and r.audio_rate == 8000


@pytest.mark.parametrize("channels,rate", [(1, 8000), (2, 44100), (6, 48000)])
def test_audio_mono_24k(make_mp4, channels: int, rate: int) -> None:
    wave = VideoReader(
        make_mp4(num_frames=30, audio_channels=channels, audio_rate=rate)
    ).get_audio()
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert wave.size == pytest.approx(24000, rel=0.06)  # 1 s (+ AAC priming/padding)
    spectrum = np.abs(np.fft.rfft(wave[2000:22000]))
    peak_hz = np.argmax(spectrum) * 24000 / 20000
    assert peak_hz == pytest.approx(440, abs=2)
    assert np.sqrt(np.mean(wave[2000:22000] ** 2)) > 0.1


def test_stereo_downmix_is_ffmpegs(make_mp4) -> None:
    """FFmpeg downmixes identical L/R to (L+R)/sqrt(2): rms 0.5 (0.3536 * sqrt 2)."""
    wave = VideoReader(make_mp4(num_frames=30, audio_channels=2)).get_audio()
    rms = float(np.sqrt(np.mean(wave[2000:22000] ** 2)))
    assert rms == pytest.approx(0.5, abs=0.02)


def test_frames_resized_as_decoded_equal_frames_resized_after(make_mp4) -> None:
    from adamml.data.spatial import resize_short

    reader = VideoReader(make_mp4(num_frames=40, size=(96, 64)))
    idx = [39, 3, 3, 17, 0, 45]
    small = reader.get_frames(idx, short=32)
    assert small.shape == (6, 32, 48, 3)
    np.testing.assert_array_equal(small, resize_short(reader.get_frames(idx), 32))
    np.testing.assert_array_equal(reader.get_frames(idx, strategy="per_frame", short=32), small)


def test_frame_folder_frames_resized_as_read_equal_frames_resized_after(tmp_path) -> None:
    import cv2

    from adamml.data.frames import FrameFolderReader
    from adamml.data.spatial import resize_short

    rng = np.random.default_rng(0)
    for k in range(1, 5):
        img = rng.integers(0, 256, (60, 90, 3), dtype=np.uint8)
        cv2.imwrite(str(tmp_path / f"{k:05d}.png"), img)
    reader = FrameFolderReader(tmp_path)
    idx = [3, 0, 0, 7]
    small = reader.get_frames(idx, short=30)
    assert small.shape == (4, 30, 45, 3)
    np.testing.assert_array_equal(small, resize_short(reader.get_frames(idx), 30))


def test_all_frames_resized_as_decoded_equal_all_frames_resized_after(make_mp4) -> None:
    from adamml.data.spatial import resize_short

    reader = VideoReader(make_mp4(num_frames=12, size=(96, 64)))
    small = reader.read_all(short=32)
    assert small.shape == (12, 32, 48, 3)
    np.testing.assert_array_equal(small, resize_short(reader.read_all(), 32))
