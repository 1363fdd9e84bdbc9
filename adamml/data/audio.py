"""The paper's audio feature: a 256x256 log-power spectrogram of a 1.28 s window at 24 kHz.

AdaMML appendix B: "a 1.28 s-length window that is center-aligned to the RGB frames ... short-time
Fourier transform ... window length 10 ms, hop length 5 ms with 256 frequency bins". The reference
(§8) uses ``librosa.stft(n_fft=511, hop_length=120, win_length=240, window='hann',
pad_mode='constant')`` and ``log(|S|^2 + 1e-6)`` without normalisation; ``torch.stft`` with the
same arguments gives the same values (dependency notes §2), batched and without librosa.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..errors import ShapeError

__all__ = [
    "log_spectrogram",
    "audio_window",
    "AUDIO_WINDOW_SECONDS",
    "N_FFT",
    "HOP_LENGTH",
    "WIN_LENGTH",
]

AUDIO_WINDOW_SECONDS = 1.28
N_FFT = 511  # 1 + 511 // 2 = 256 frequency bins
HOP_LENGTH = 120  # 5 ms at 24 kHz
WIN_LENGTH = 240  # 10 ms at 24 kHz
_EPS = 1e-6


def log_spectrogram(wave: Tensor | np.ndarray) -> Tensor:
    """Natural-log power spectrogram, ``log(|STFT|^2 + 1e-6)``, as the reference computes it.

    Args:
        wave: ``(..., N)`` float samples at 24 kHz; ``N = 30720`` (1.28 s) gives 256x256.

    Returns:
        ``(..., 256, N // 120 + 1)`` float32 (rows frequency, columns time), on ``wave``'s device.

    Raises:
        ShapeError: ``wave`` has no sample dimension or fewer than 2 samples.

    Shape:
        ``(N,) -> (F, W)``, batched ``(B, N) -> (B, F, W)``; F = 256, W = 256 for N = 30720.

    Example:
        >>> import torch
        >>> log_spectrogram(torch.zeros(30720)).shape
        torch.Size([256, 256])
    """
    x = torch.as_tensor(wave)
    if x.dim() == 0 or x.shape[-1] < 2:
        raise ShapeError(
            f"log_spectrogram needs a wave of shape (..., N) with N >= 2; got {tuple(x.shape)}"
        )
    if not x.is_floating_point():
        x = x.float()
    lead = x.shape[:-1]
    flat = x.reshape(-1, x.shape[-1])
    window = torch.hann_window(WIN_LENGTH, periodic=True, dtype=flat.dtype, device=flat.device)
    spec = torch.stft(
        flat,
        n_fft=N_FFT,
        hop_length=HOP_LENGTH,
        win_length=WIN_LENGTH,
        window=window,
        center=True,
        pad_mode="constant",
        return_complex=True,
    )
    power = spec.real.square() + spec.imag.square()
    out = torch.log(power + _EPS)
    return out.reshape(*lead, *out.shape[-2:]).to(torch.float32)


def audio_window(
    audio: np.ndarray,
    centre_seconds: float,
    *,
    sample_rate: int = 24000,
    seconds: float = AUDIO_WINDOW_SECONDS,
) -> np.ndarray:
    """The ``seconds``-long window of ``audio`` centred on ``centre_seconds``.

    As the reference (§8): a window that would start before 0 is the first ``seconds``; one that
    would end after the track is the last ``seconds``; a track shorter than the window is tiled
    (repeated) to fill it. An empty track gives zeros.

    Args:
        audio: ``(n,)`` mono samples.
        centre_seconds: the segment's centre time (its centre frame / the video's own fps).
        sample_rate: Hz.
        seconds: window length (1.28 s gives 30720 samples at 24 kHz).

    Returns:
        ``(round(sample_rate * seconds),)`` float32.
    """
    length = int(round(sample_rate * seconds))
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    if audio.size == 0:
        return np.zeros(length, np.float32)
    if audio.size < length:
        audio = np.tile(audio, -(-length // audio.size))
        return audio[:length].copy()
    start = int(round(centre_seconds * sample_rate)) - length // 2
    start = min(max(start, 0), audio.size - length)
    return audio[start : start + length].copy()
