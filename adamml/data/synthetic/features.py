"""Model inputs from raw frames and audio, with the conventions of the real data pipeline.

A stand-in with the signature of ``adamml.data.transforms.ClipTransform`` (``__call__(get_frames,
num_frames, fps, audio, rng) -> dict``), built on the same pieces (`sample_segments`,
`segment_centres`, `audio_window`, `log_spectrogram`), so the in-memory SyntheticAV tensors
and a written mp4 read through the real pipeline agree up to compression error. It only knows
centre-free resizing (no crops or flips) and the ``rgb``, ``rgbdiff`` and ``audio`` modalities.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ...errors import ConfigError
from ...modalities import InputSpec
from ..audio import audio_window, log_spectrogram
from ..sampling import FRAME_STRIDE, sample_segments, segment_centres

__all__ = ["SyntheticClipTransform", "IMAGENET_MEAN", "IMAGENET_STD", "normalise_frames",
           "shared_indices"]

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
_SUPPORTED = ("rgb", "rgbdiff", "audio", "sound")


def normalise_frames(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize to ``size`` (area interpolation) and normalise with the ImageNet mean/std.

    Shape:
        ``(n, H0, W0, 3)`` uint8 -> ``(n, 3, H, W)`` float32.
    """
    h, w = size
    n, h0, w0 = frames.shape[:3]
    if (h0, w0) == (h, w):
        x = frames.astype(np.float32)
    elif h0 % h == 0 and w0 % w == 0:  # integer factor: area interpolation is a block mean
        x = frames.reshape(n, h, h0 // h, w, w0 // w, 3).mean((2, 4), dtype=np.float32)
    else:
        x = np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA)
                      for f in frames]).astype(np.float32)
    x = (x / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def shared_indices(input_spec: Mapping[str, InputSpec], num_frames: int, segments: int, *,
                   train: bool, rng: np.random.Generator, stride: int = FRAME_STRIDE) -> np.ndarray:
    """``(S, T)`` frame indices shared by every modality of ``input_spec`` (one draw).

    T and ``consecutive`` are the largest over the visual modalities (1 if only audio), so every
    modality's frames and the audio window centres come from the same segment starts.
    """
    visual = [s for m, s in input_spec.items() if m not in ("audio", "sound")]
    frames = max((s.frames for s in visual), default=1)
    consecutive = max((s.consecutive for s in visual), default=1)
    return sample_segments(num_frames, segments, frames, train=train, rng=rng, stride=stride,
                           consecutive=consecutive)


class SyntheticClipTransform:
    """Featurise one video into ``{modality: (S, T, C, H, W)}`` (AdaMML appendix B).

    RGB: ``T`` frames per segment at stride ``stride`` (`sample_segments`), resized to the spec
    size, ImageNet-normalised. RGB difference: for each sampled frame ``k``, the 5 differences
    of frames ``k .. k+5`` of the normalised frames, stacked (15 channels). Audio: the 1.28 s
    window centred on the segment's centre frame (`segment_centres` / fps), ``log(|STFT|^2 +
    1e-6)`` (256x256), adaptive-average-pooled to the spec's ``(F, W)``.

    Args:
        input_spec: modality -> `InputSpec` (e.g. ``model.input_spec``).
        segments: S.
        train: random segment starts (True) or evenly spaced (False); no crops or flips.
        stride: temporal stride between sampled frames.

    Raises:
        ConfigError: a modality this stand-in cannot make (``flow``: use ``ClipTransform``).

    Example:
        >>> from adamml.modalities import InputSpec
        >>> t = SyntheticClipTransform({"rgb": InputSpec((4, 3, 32, 32), "rgb")}, segments=2,
        ...                            train=False)
        >>> frames = np.zeros((64, 64, 64, 3), np.uint8)
        >>> t(lambda idx: frames[list(idx)], 64, 12.5, None, np.random.default_rng(0))["rgb"].shape
        torch.Size([2, 4, 3, 32, 32])
    """

    def __init__(self, input_spec: Mapping[str, InputSpec], *, segments: int, train: bool,
                 stride: int = FRAME_STRIDE) -> None:
        unknown = [m for m in input_spec if m not in _SUPPORTED]
        if unknown:
            raise ConfigError(f"SyntheticAV's built-in featuriser makes {', '.join(_SUPPORTED)}; "
                              f"not {', '.join(unknown)}. Pass transform=ClipTransform(...) from "
                              f"adamml.data.transforms for these modalities")
        self.input_spec = dict(input_spec)
        self.segments, self.train, self.stride = int(segments), bool(train), int(stride)

    def sample(self, num_frames: int, rng: np.random.Generator) -> np.ndarray:
        """``(S, T)`` frame indices shared by all modalities (one random draw per call)."""
        return shared_indices(self.input_spec, num_frames, self.segments, train=self.train,
                              rng=rng, stride=self.stride)

    def __call__(self, get_frames: Callable[[Sequence[int]], np.ndarray], num_frames: int,
                 fps: float, audio: np.ndarray | None, rng: np.random.Generator
                 ) -> dict[str, Tensor]:
        """Featurise one video; see the class docstring for the conventions."""
        idx = self.sample(num_frames, rng)
        out: dict[str, Tensor] = {}
        for name, spec in self.input_spec.items():
            if name in ("audio", "sound"):
                out[name] = self.audio(audio, segment_centres(idx) / fps, spec)
                continue
            sel = idx[:, : spec.frames]
            if name == "rgb":
                x = normalise_frames(get_frames(sel.reshape(-1).tolist()), spec.size)
                out[name] = torch.from_numpy(x).reshape(*sel.shape, *x.shape[1:])
            else:  # rgbdiff: consecutive + 1 raw frames per sampled frame
                k = spec.consecutive
                raw = sel[..., None] + np.arange(k + 1)
                raw = np.clip(raw, 0, num_frames - 1)
                x = normalise_frames(get_frames(raw.reshape(-1).tolist()), spec.size)
                x = x.reshape(*sel.shape, k + 1, *x.shape[1:])
                diff = x[:, :, 1:] - x[:, :, :-1]  # (S, T, k, 3, H, W)
                out[name] = torch.from_numpy(np.ascontiguousarray(diff)).flatten(2, 3)
        return out

    @staticmethod
    def audio(audio: np.ndarray | None, centres_s: np.ndarray, spec: InputSpec,
              sample_rate: int = 24000) -> Tensor:
        """``(S, 1, 1, F, W)`` pooled log-spectrograms of the windows centred at ``centres_s``."""
        if audio is None:
            raise ConfigError("the audio modality was asked for but the video has no audio track")
        windows = np.stack([audio_window(audio, float(c), sample_rate=sample_rate)
                            for c in centres_s])
        spec_full = log_spectrogram(torch.from_numpy(windows))  # (S, 256, 256)
        pooled = F.adaptive_avg_pool2d(spec_full[:, None], spec.size)
        return pooled[:, None]
