"""log_spectrogram against a float64 reference of the same formula; audio windows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from adamml.data.audio import audio_window, log_spectrogram
from adamml.errors import ShapeError


def _reference(wave: np.ndarray) -> np.ndarray:
    """float64 numpy: centre-pad 255 zeros, periodic Hann(240) centred in 511, hop 120."""
    n_fft, hop, win = 511, 120, 240
    window = np.zeros(n_fft)
    left = (n_fft - win) // 2
    window[left : left + win] = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)
    x = np.pad(wave.astype(np.float64), n_fft // 2)
    frames = 1 + (len(x) - n_fft) // hop
    cols = np.stack([x[i * hop : i * hop + n_fft] * window for i in range(frames)], axis=1)
    spec = np.fft.rfft(cols, axis=0)
    return np.log(np.abs(spec) ** 2 + 1e-6)


def test_shape_and_values_match_reference() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(30720) / 24000
    wave = 0.5 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.size)
    ours = log_spectrogram(torch.from_numpy(wave.astype(np.float32))).numpy()
    ref = _reference(wave)
    assert ours.shape == ref.shape == (256, 256)
    # Compared away from near-silent bins (log power > -10), where float32 rounding of tiny
    # powers dominates; there the whole image agrees to 1e-3.
    mask = ref > -10
    assert mask.mean() > 0.95
    assert np.abs(ours - ref)[mask].max() < 1e-3


def test_batched_and_errors() -> None:
    x = torch.randn(2, 3, 30720)
    out = log_spectrogram(x)
    assert out.shape == (2, 3, 256, 256)
    torch.testing.assert_close(out[1, 2], log_spectrogram(x[1, 2]))
    with pytest.raises(ShapeError):
        log_spectrogram(torch.tensor(1.0))


def test_audio_window_edges_and_tiling() -> None:
    audio = np.arange(100000, dtype=np.float32)
    w = audio_window(audio, 2.0)
    assert w.size == 30720 and w[0] == 48000 - 15360
    assert audio_window(audio, 0.0)[0] == 0  # first 1.28 s
    assert audio_window(audio, 100.0)[-1] == 99999  # last 1.28 s
    short = audio_window(np.array([1, 2, 3], np.float32), 0.5)  # tiled
    assert short.size == 30720 and short[:6].tolist() == [1, 2, 3, 1, 2, 3]
    assert not audio_window(np.zeros(0, np.float32), 1.0).any()
