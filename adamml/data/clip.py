"""One video file to model inputs, for prediction and quick experiments (AdaMML appendix B)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
from torch import Tensor

from ..modalities import InputSpec
from .errors import NoAudioStreamError
from .frames import open_media
from .transforms import ClipTransform

__all__ = ["load_video_inputs"]


def load_video_inputs(path: str | os.PathLike[str], input_spec: Mapping[str, InputSpec] | Any,
                      *, segments: int = 10, missing_audio: str = "zeros") -> dict[str, Tensor]:
    """Decode ``path`` and build the evaluation inputs a model asks for.

    Evaluation sampling (``segments`` evenly spaced segments, centre crop), exactly as
    [`VideoDataset`][adamml.data.VideoDataset] does with ``train=False``.

    Args:
        path: a video file (any container PyAV reads) or a frame folder.
        input_spec: ``model.input_spec`` or the model itself.
        segments: S.
        missing_audio: ``"zeros"`` (a silent spectrogram) or ``"raise"`` when the file has no
            audio track but the model needs audio.

    Returns:
        ``{m: (1, S, T, C, H, W)}``: a batch of one video.

    Raises:
        DataError: (a subclass) naming the file when it cannot be decoded.

    Example:
        >>> x = load_video_inputs("clip.mp4", model.input_spec)  # doctest: +SKIP
        >>> out = model.eval()(x)                                  # doctest: +SKIP
    """
    spec = dict(getattr(input_spec, "input_spec", input_spec))
    transform = ClipTransform(spec, segments=segments, train=False)
    media = open_media(path)
    audio = None
    if "audio" in transform.kinds.values():
        if media.has_audio:
            audio = media.get_audio()
        elif missing_audio == "raise":
            raise NoAudioStreamError(f"{path}: the file has no audio stream")
    inputs = transform(media.get_frames, media.num_frames, media.fps, audio,
                       np.random.default_rng(0))
    return {m: x.unsqueeze(0) for m, x in inputs.items() if isinstance(x, Tensor)}
